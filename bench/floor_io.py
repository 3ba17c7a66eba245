"""The floor's messages and its no-op activities, outside the workflow module.

Workflow modules are imported afresh in Temporal's sandbox for every run; the product
keeps its pydantic models in `*_messages.py` modules and passes them through, and so does
the floor, so neither pays for building model classes per workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity


class Floor(BaseModel):
    model_config = ConfigDict(frozen=True)


class FloorShape(Floor):
    """What one execution schedules, and the executions it starts as children, in order."""

    activities: int
    local_activities: int = 0
    children: list[FloorShape] = []

    @property
    def executions(self) -> int:
        return 1 + sum(c.executions for c in self.children)

    def flat(self) -> FloorShape:
        """Every activity of the tree in one execution: the least Temporal work it costs."""
        kids = [c.flat() for c in self.children]
        return FloorShape(
            activities=self.activities + sum(k.activities for k in kids),
            local_activities=self.local_activities + sum(k.local_activities for k in kids),
        )


class FloorStep(Floor):
    key: str
    step: int


class FloorInput(Floor):
    key: str
    tag: str
    shape: FloorShape  # counted from the product (bench/sagas.py, `shape_of`)


class FloorResult(Floor):
    key: str
    steps: int


class FloorPageInput(Floor):
    after: int
    limit: int
    total: int


class FloorPage(Floor):
    keys: list[str]
    next_after: int | None


class FloorRunInput(Floor):
    tag: str
    shape: FloorShape  # of each cycle it starts (the flat one: one execution)
    total: int
    page_size: int
    concurrency: int
    after: int = 0
    started: int = 0


@activity.defn(name="bench_noop")
async def noop(step: FloorStep) -> FloorStep:
    return step


@activity.defn(name="bench_floor_page")
async def floor_page(req: FloorPageInput) -> FloorPage:
    """The keys after `after`, as list_billable_customers pages customer ids."""
    end = min(req.after + req.limit, req.total)
    keys = [f"k{n:06d}" for n in range(req.after, end)]
    return FloorPage(keys=keys, next_after=end if end < req.total else None)


ACTIVITIES: list[Callable[..., Any]] = [noop, floor_page]
