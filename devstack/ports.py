"""Free ports for tests, and a check that a fixed port is free before a server wants it."""

from __future__ import annotations

import socket

from devstack.errors import PortInUseError

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick; another process could still race us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True when a listener could bind 127.0.0.1:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers set it: a TIME_WAIT left by our last run is no conflict,
        # while any listener (on 127.0.0.1 or 0.0.0.0) still is.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def ensure_port_free(port: int, purpose: str) -> None:
    """Raise PortInUseError naming the port and `purpose` when something holds it."""
    if not port_is_free(port):
        raise PortInUseError(port, purpose)


def is_listening(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
