"""Request bodies and answers of the routes that start or signal workflows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from billing.catalog import Tier


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpgradeBody(Body):
    tier: Tier


class PeriodBody(Body):
    period: str = Field(examples=["2026-10"], description="YYYY-MM")


class RefundBody(Body):
    amount: Decimal | None = Field(
        default=None, description="A decimal string; absent means all that is refundable"
    )
    # It travels into the saga and on to Postgres, whose text cannot hold a NUL: refused here.
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")


class Started(BaseModel):
    """Every route that starts a workflow answers 202 with its id."""

    workflow_id: str
    status: str = "started"


class WorkflowStatus(BaseModel):
    workflow_id: str
    status: str
    step: str | None
    details: dict[str, Any]
