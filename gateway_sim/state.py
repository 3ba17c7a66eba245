"""What the simulator's routes share: settings, store, the seeded generator, faults, errors."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import JSONResponse

from config.settings import Settings
from gateway_sim.settlement import Settler
from gateway_sim.store import Store

log = logging.getLogger("gateway_sim")
# A lost answer is held until the client hangs up, polled this often, and never past the cap,
# so a client without a timeout cannot keep a request open forever.
LOST_ANSWER_POLL_S = 0.2
LOST_ANSWER_CAP_S = 600.0


class SimError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def envelope(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


@dataclass
class Faults:
    """The next `count` new captures are stored first, then answered after the delay."""

    delay_after_capture_ms: int = 0
    count: int = 0

    def take(self) -> float:
        """Seconds to wait after this capture (0 when no fault is armed); consumes one."""
        if self.count <= 0 or self.delay_after_capture_ms <= 0:
            return 0.0
        self.count -= 1
        return self.delay_after_capture_ms / 1000


@dataclass
class SimState:
    settings: Settings
    store: Store
    settler: Settler
    rng: random.Random
    faults: Faults = field(default_factory=Faults)

    def reset(self) -> None:
        """Empty storage and re-seed, so a test run starts where a fresh process would."""
        self.store.reset()
        self.rng = random.Random(self.settings.gateway_seed)
        self.faults = Faults()


async def lose_answer(request: Request, what: str) -> JSONResponse:
    """Answer nothing until the client disconnects (its call times out): the effect stands."""
    log.info("%s: answer lost, holding until the client gives up", what)
    polls = int(LOST_ANSWER_CAP_S / LOST_ANSWER_POLL_S)
    for _ in range(polls):
        if await request.is_disconnected():
            log.info("%s: the client gave up waiting", what)
            break
        await asyncio.sleep(LOST_ANSWER_POLL_S)
    else:
        log.warning("%s: held for %.0fs, the cap; answering a timeout", what, LOST_ANSWER_CAP_S)
    # Nobody reads this after a disconnect; past the cap, the client learns only a timeout.
    return envelope(504, "gateway_timeout", "the gateway did not answer in time; retry")


def get_sim(request: Request) -> SimState:
    state = request.app.state.sim
    assert isinstance(state, SimState)
    return state
