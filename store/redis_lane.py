"""The limiter's own way to Redis: one EVALSHA written as prepared bytes, one reply read.

redis-py's `execute_command` checks a connection out of the pool for every command (a lock,
a liveness probe of the socket, observability hooks), wraps it in a retry and parses the
arguments again: on this machine about 60 us of CPU a call, nearly a PING's whole cost.
The lane keeps the connections it has used (taken from the client's pool, so the client's
`aclose()` still closes them) and writes each script call as one RESP command built from
pre-encoded parts. A connection that fails, times out or is interrupted mid-call is
disconnected and handed back to the pool, never reused with a reply pending.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

Part = bytes | str | int
_PING = b"*1\r\n$4\r\nPING\r\n"


def resp(parts: list[Part]) -> bytes:
    """A RESP array of bulk strings; str is UTF-8, int its decimal digits."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, int):
            data = b"%d" % part
        elif isinstance(part, str):
            data = part.encode()
        else:
            data = part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Script:
    """A Lua script known by its SHA1, loaded on first NOSCRIPT."""

    def __init__(self, redis: Redis, source: str) -> None:
        registered = redis.register_script(source)
        self.source = source
        self.sha = registered.sha.encode()


class Lane:
    """Script calls on held connections, at most `size` at once."""

    def __init__(self, redis: Redis, size: int) -> None:
        self._redis = redis
        self._size = size
        self._idle: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(size)

    async def warm(self) -> None:
        """Open every connection the lane may hold, one after another, before traffic.

        Opened lazily, a burst opens them all at once on a busy event loop, where a connect
        can overrun the client's short timeout though Redis is fine (and the caller then
        takes Redis for down). Raises what the connect raises; those opened stay.
        """
        while len(self._idle) < self._size:
            self._idle.append(await self._take())  # the pool hands it out connected

    async def evalsha(self, script: Script, keys: list[Part], args: list[Part]) -> Any:
        command = resp([b"EVALSHA", script.sha, len(keys), *keys, *args])
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._take()
            try:
                try:
                    answer = await self._call(conn, command)
                except NoScriptError:
                    await self._call(conn, resp([b"SCRIPT", b"LOAD", script.source]))
                    answer = await self._call(conn, command)
            except BaseException as exc:
                await self._drop(conn, exc)
                raise
            self._idle.append(conn)
            return answer

    async def ping(self) -> None:
        """One PING the way a script call goes: the bare round trip (the bench's baseline)."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._take()
            try:
                await self._call(conn, _PING)
            except BaseException as exc:
                await self._drop(conn, exc)
                raise
            self._idle.append(conn)

    async def _drop(self, conn: AbstractConnection, exc: BaseException) -> None:
        """Close a connection that failed mid-call. A broken one (reset, closed: Redis went
        away) says the idle ones opened to the same server are broken too: they are closed
        with it, so each does not cost a request of its own once Redis is back. A timeout
        says nothing of the others (a busy loop can overrun it) and closes only its own."""
        doomed = [conn]
        broken = isinstance(exc, (RedisConnectionError, OSError))
        if broken and not isinstance(exc, TimeoutError):  # TimeoutError is an OSError
            doomed += self._idle
            self._idle.clear()
        for each in doomed:
            await each.disconnect()
            await self._redis.connection_pool.release(each)

    async def _take(self) -> AbstractConnection:
        pool = self._redis.connection_pool
        conn: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        return conn

    @staticmethod
    async def _call(conn: AbstractConnection, command: bytes) -> Any:
        await conn.send_packed_command(command, check_health=False)
        return await conn.read_response()
