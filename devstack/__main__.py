"""`python -m devstack [run | migrate | schedules | worker-ready]`: the stack and its chores."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.settings import Settings


async def _migrate(settings: Settings) -> int:
    from store.migrate import migrate_url

    if not settings.database_url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    applied = await migrate_url(settings.database_url)
    print(f"migrations: {', '.join(applied) if applied else 'up to date'}")
    return 0


async def _schedules(settings: Settings) -> int:
    from devstack.announce import schedules
    from devstack.servers import Dependencies

    deps = Dependencies(settings.database_url, settings.redis_url, settings.temporal_address, None)
    await schedules(print, settings, deps)
    return 0


async def _worker_ready(settings: Settings) -> int:
    from temporalio.client import Client

    from devstack.announce import worker_polls

    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    return 0 if await worker_polls(client, settings, wait_s=0) else 1


_COMMANDS: dict[str, Callable[[Settings], Coroutine[Any, Any, int]]] = {
    "migrate": _migrate,
    "schedules": _schedules,
    "worker-ready": _worker_ready,
}


def main(argv: list[str] | None = None) -> int:
    # A shell without job control starts background commands with SIGINT ignored, and
    # that would outlive the imports below: the stack must always stop on SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", *_COMMANDS],
        help="run: the whole stack (make run); migrate: apply migrations to DATABASE_URL; "
        "schedules: create the Temporal Schedules; worker-ready: exit 0 when a worker polls "
        "the task queue (docker compose uses the last three)",
    )
    command = parser.parse_args(argv).command
    try:
        if command == "run":
            from devstack.run import main as run_main

            return run_main()
        from config.settings import Settings

        return asyncio.run(_COMMANDS[command](Settings()))
    except KeyboardInterrupt:
        return 130  # interrupted before anything was started


if __name__ == "__main__":
    sys.exit(main())
