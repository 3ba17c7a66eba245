"""A compensation stack: register before the step, run in reverse on failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import workflow

Compensation = Callable[[], Awaitable[None]]


class Saga:
    """Compensations are written to be safe whether or not their step happened."""

    def __init__(self) -> None:
        self._compensations: list[tuple[str, Compensation]] = []

    def add(self, name: str, compensation: Compensation) -> None:
        self._compensations.append((name, compensation))

    async def compensate(self) -> list[str]:
        """Run every compensation, newest first, even if cancelled; returns what ran."""
        done: list[str] = []

        async def run_all() -> None:
            for name, compensation in reversed(self._compensations):
                try:
                    await compensation()
                    done.append(name)
                except Exception:  # one failing compensation must not stop the others
                    workflow.logger.exception("compensation %s failed", name)

        await asyncio.shield(asyncio.ensure_future(run_all()))
        return done
