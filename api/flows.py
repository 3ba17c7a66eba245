"""Request bodies and answers of the routes that start or signal workflows."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import PERIOD_PATTERN, decimal_string, stated
from billing.catalog import Tier

# A positive amount below 10^18 with at most 2 decimals: what billing.money.parse_money
# takes for USD (and EUR, GBP); a JPY service refuses decimals, which this cannot say.
AMOUNT_PATTERN = r"^([1-9][0-9]{0,17}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpgradeBody(Body):
    tier: Tier


class PeriodBody(Body):
    """Checked by billing.periods.parse_period (its messages); the schema states the rule."""

    period: str = Field(
        examples=["2026-10"],
        description="YYYY-MM, an ended month",
        json_schema_extra=stated(pattern=PERIOD_PATTERN),
    )


class RefundBody(Body):
    """`amount` is checked in the route and the saga: above zero, on the currency's minor
    unit grid, at most what is refundable (409 above it, which no schema can know)."""

    amount: Annotated[Decimal, decimal_string(AMOUNT_PATTERN, "12.50")] | None = Field(
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
