"""Why the stack could not start; every message says what to do next."""

from __future__ import annotations


class StartupError(RuntimeError):
    """A server did not come up; the message names it and where its log is."""


class ExitedWhileStarting(StartupError):
    """The server's process ended before it was ready (a crash, not a slow start)."""


class PortInUseError(StartupError):
    """A fixed port is taken; the message names the port and who wanted it."""

    def __init__(self, port: int, purpose: str) -> None:
        self.port = port
        self.purpose = purpose
        super().__init__(
            f"port {port} ({purpose}) is already in use on 127.0.0.1: stop whatever listens "
            f"there (`ss -ltnp 'sport = :{port}'` shows it) or point the stack elsewhere"
        )
