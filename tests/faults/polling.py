"""Waiting for a condition with a deadline: every wait in the fault tests is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], Awaitable[bool]], within: float, every: float = 0.1) -> float:
    """Poll `check` until it holds; TimeoutError after `within` seconds. Returns seconds taken."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with asyncio.timeout(within):
        while True:
            if await check():
                return loop.time() - began
            await asyncio.sleep(every)
