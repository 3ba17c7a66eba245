"""The dev stack's promises: a taken port is named, a dead child restarts, nothing is left."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from devstack import temporal_server
from devstack.errors import ExitedWhileStarting
from devstack.services import (
    SEARCH_ATTRIBUTES,
    PortInUseError,
    ensure_search_attributes,
    free_port,
    port_is_free,
    start_postgres,
    start_redis,
)
from devstack.supervisor import ChildSpec, Supervisor
from devstack.temporal_server import temporal_binary


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def _until(predicate) -> None:
    deadline = time.monotonic() + 10.0
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_a_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=rf"port {port} \(Redis\)"):
            start_redis(port, tmp_path / "redis", tmp_path / "redis.log", durable=False)
    assert port_is_free(port)


def test_stopping_a_server_leaves_no_process(tmp_path: Path) -> None:
    server = start_redis(free_port(), tmp_path / "redis", tmp_path / "redis.log", durable=False)
    pid = server.process.pid
    assert os.getpgid(pid) == pid, "each server leads its own process group"
    server.stop()
    assert not _group_alive(pid)
    assert port_is_free(server.port)


async def _write_then_read(url: str, *, write: bool) -> int:
    conn = await asyncpg.connect(url)
    try:
        if write:
            await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (41), (1)")
        return int(await conn.fetchval("SELECT sum(n) FROM kept"))
    finally:
        await conn.close()


async def test_postgres_keeps_its_data_across_a_restart(devstack_dir: Path) -> None:
    # Under devstack_dir, not tmp_path: see that fixture for why Postgres avoids basetemp.
    data, log = devstack_dir / "kept-pg", devstack_dir / "kept-pg.log"
    first = await asyncio.to_thread(start_postgres, data, free_port(), log)
    try:
        assert await _write_then_read(first.url, write=True) == 42
    finally:
        await asyncio.to_thread(first.stop)
    assert not _group_alive(first.process.pid)
    second = await asyncio.to_thread(start_postgres, data, free_port(), log)
    try:
        assert await _write_then_read(second.url, write=False) == 42
    finally:
        await asyncio.to_thread(second.stop)


async def test_a_killed_child_is_started_again(tmp_path: Path) -> None:
    lines: list[str] = []
    supervisor = Supervisor(tmp_path / "logs", echo=lines.append, min_backoff=0.1)
    code = "import time; print('up', flush=True); time.sleep(60)"
    supervisor.start(ChildSpec("sleeper", [sys.executable, "-c", code], dict(os.environ), tmp_path))
    try:
        await _until(lambda: supervisor.pid("sleeper") is not None)
        first = supervisor.pid("sleeper")
        assert first is not None
        assert os.getpgid(first) == first
        # Killed only once it is up: a child killed while Python starts never prints "up".
        await _until(lambda: lines.count("sleeper | up") == 1)
        os.kill(first, signal.SIGKILL)
        await _until(lambda: supervisor.pid("sleeper") not in (None, first))
        second = supervisor.pid("sleeper")
        assert second is not None
        await _until(lambda: lines.count("sleeper | up") == 2)
    finally:
        await supervisor.stop()
    assert any("sleeper was killed by SIGKILL; restarting" in line for line in lines)
    assert not _group_alive(first)
    assert not _group_alive(second)
    assert "up" in (tmp_path / "logs" / "sleeper.log").read_text()


async def test_a_crashing_child_backs_off_instead_of_looping(tmp_path: Path) -> None:
    lines: list[str] = []
    supervisor = Supervisor(tmp_path / "logs", echo=lines.append, min_backoff=0.2, max_backoff=0.8)
    crash = [sys.executable, "-c", "raise SystemExit(3)"]
    supervisor.start(ChildSpec("crasher", crash, dict(os.environ), tmp_path))
    await asyncio.sleep(2.0)
    await supervisor.stop()
    # 0.2 + 0.4 + 0.8 + 0.8 s of backoff fit in 2 s: a hot loop would restart hundreds of times.
    assert 2 <= supervisor.restarts["crasher"] <= 5
    assert any("crasher exited with code 3; restarting in 0.4s" in line for line in lines)


def test_search_attributes_are_registered(temporal_address: str) -> None:
    ensure_search_attributes(temporal_address)  # again: a no-op, not an error
    listed = subprocess.run(
        [temporal_binary(), "operator", "search-attribute", "list", "--address", temporal_address],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in SEARCH_ATTRIBUTES:
        assert name in listed


def _crashing(tmp_path: Path, crashes: int) -> str:
    """A `temporal` whose first `crashes` dev-server starts panic (exit 2, a long stack
    after the message), then the real binary."""
    script = tmp_path / "temporal"
    script.write_text(
        "#!/bin/sh\n"
        f"crashed=$(ls {tmp_path} | grep -c crashed)\n"
        f'if [ "$1 $2" = "server start-dev" ] && [ "$crashed" -lt {crashes} ]; then\n'
        f"  touch {tmp_path}/crashed.$$\n"
        '  echo "panic: failed assigning ephemeral port"\n'
        '  for i in $(seq 30); do echo "        /go/src/frame$i.go:$i +0x$i"; done\n'
        "  exit 2\n"
        "fi\n"
        f'exec {temporal_binary()} "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_a_dev_server_that_crashes_while_starting_is_started_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(temporal_server, "temporal_binary", lambda: _crashing(tmp_path, 1))
    server = temporal_server.start_temporal(free_port(), tmp_path / "temporal.log")
    try:
        assert server.process.running()
        assert len(list(tmp_path.glob("crashed.*"))) == 1
    finally:
        server.stop()


def test_a_second_crash_is_reported_with_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(temporal_server, "temporal_binary", lambda: _crashing(tmp_path, 2))
    with pytest.raises(ExitedWhileStarting, match="panic: failed assigning ephemeral port"):
        temporal_server.start_temporal(free_port(), tmp_path / "temporal.log")
