"""Real servers started from wheels, shared by `make run` and the test fixtures.

Each `start_*` waits until its server answers (bounded, with a clear error), runs the
server in its own process group, and returns a handle whose `stop()` leaves nothing.
"""

from __future__ import annotations

from devstack.errors import PortInUseError, StartupError
from devstack.ports import ensure_port_free, free_port, port_is_free
from devstack.postgres import PostgresServer, start_postgres
from devstack.redis_server import RedisServer, start_redis
from devstack.temporal_server import (
    SEARCH_ATTRIBUTES,
    TemporalServer,
    ensure_search_attributes,
    start_temporal,
)

__all__ = [
    "SEARCH_ATTRIBUTES",
    "PortInUseError",
    "PostgresServer",
    "RedisServer",
    "StartupError",
    "TemporalServer",
    "ensure_port_free",
    "ensure_search_attributes",
    "free_port",
    "port_is_free",
    "start_postgres",
    "start_redis",
    "start_temporal",
]
