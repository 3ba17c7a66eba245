"""The free-to-starter conversion, started from the usage path once a customer crosses."""

from __future__ import annotations

import asyncio
import logging

from api.deps import AppState
from api.temporal import start_auto_conversion
from billing.errors import DependencyUnavailable
from store.limiter import RateLimiter

log = logging.getLogger("api.usage")

_CONVERSION_START_TIMEOUT_S = 5.0


async def convert(state: AppState, limiter: RateLimiter, customer_id: str) -> None:
    """Start the upgrade saga once; a failed start clears the flag for the next request."""
    try:
        if not await limiter.claim_conversion(customer_id):
            return
    except DependencyUnavailable:
        return
    try:
        async with asyncio.timeout(_CONVERSION_START_TIMEOUT_S):
            await start_auto_conversion(state.temporal, state.settings, customer_id)
    except Exception:
        # The usage is recorded either way; the next request over the line retries the start.
        log.exception("could not start the auto conversion of %s", customer_id)
        try:
            await limiter.forget_conversion(customer_id)
        except DependencyUnavailable:
            log.warning("could not clear the conversion flag of %s", customer_id)
