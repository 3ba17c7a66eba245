"""The price catalog the code reads: tiers, base fees, hourly limits, unit prices, contracts."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from billing.errors import InvalidInput
from billing.money import minor_unit


class Tier(StrEnum):
    FREE = "free"
    STARTER = "starter"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


TIER_ORDER: tuple[Tier, ...] = (Tier.FREE, Tier.STARTER, Tier.PROFESSIONAL, Tier.ENTERPRISE)


# A free customer who can pay converts to this tier when it crosses the free limit, and is
# limited as this tier meanwhile, so the usage that crosses the line is not refused.
AUTO_UPGRADE_TIER = Tier.STARTER


def is_upgrade(from_tier: Tier, to_tier: Tier) -> bool:
    """True only for a move strictly up `TIER_ORDER`; the same tier is not an upgrade."""
    return TIER_ORDER.index(to_tier) > TIER_ORDER.index(from_tier)


class UsageKind(StrEnum):
    API_CALL = "api_call"
    LLM_TOKENS = "llm_tokens"
    AGENT_EXECUTION = "agent_execution"


def _price(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0:
        raise ValueError(f"a price must be a finite amount >= 0, not {value}")
    return value


class TierPlan(BaseModel):
    """One tier's terms; `api_calls_per_hour=None` means no hourly limit."""

    model_config = ConfigDict(frozen=True)

    tier: Tier
    base_fee: Decimal
    api_calls_per_hour: int | None = Field(default=None, gt=0)
    charges_usage: bool

    @field_validator("base_fee")
    @classmethod
    def _base_fee(cls, value: Decimal) -> Decimal:
        return _price(value)


class ContractOverrides(BaseModel):
    """An enterprise contract: own unit prices, own hourly limit, a usage discount in [0, 1]."""

    model_config = ConfigDict(frozen=True)

    unit_prices: dict[UsageKind, Decimal] = Field(default_factory=dict)
    api_calls_per_hour: int | None = Field(default=None, gt=0)
    usage_discount: Decimal = Decimal(0)

    @field_validator("unit_prices")
    @classmethod
    def _prices(cls, value: dict[UsageKind, Decimal]) -> dict[UsageKind, Decimal]:
        for price in value.values():
            _price(price)
        return value

    @field_validator("usage_discount")
    @classmethod
    def _fraction(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or not 0 <= value <= 1:
            raise ValueError(f"usage_discount is a fraction in [0, 1], not {value}")
        return value


class PriceCatalog(BaseModel):
    """Every tier has a plan and every usage kind a price: lookups never miss."""

    model_config = ConfigDict(frozen=True)

    currency: str = "USD"
    plans: dict[Tier, TierPlan]
    unit_prices: dict[UsageKind, Decimal]

    @model_validator(mode="after")
    def _complete(self) -> PriceCatalog:
        minor_unit(self.currency)
        missing = [t.value for t in Tier if t not in self.plans]
        missing += [k.value for k in UsageKind if k not in self.unit_prices]
        if missing:
            raise ValueError(f"price catalog lacks {', '.join(missing)}")
        for tier, plan in self.plans.items():
            if plan.tier != tier:
                raise ValueError(f"plan for {tier} is labelled {plan.tier}")
        for price in self.unit_prices.values():
            _price(price)
        fees = [self.plans[t].base_fee for t in TIER_ORDER]
        if fees != sorted(fees):
            # An upgrade bills the fee difference: it must never be negative.
            raise ValueError("base fees must not decrease from free to enterprise")
        return self

    def plan(self, tier: Tier) -> TierPlan:
        return self.plans[Tier(tier)]

    def base_fee(self, tier: Tier) -> Decimal:
        return self.plan(tier).base_fee

    def unit_price(
        self, tier: Tier, kind: UsageKind, overrides: ContractOverrides | None = None
    ) -> Decimal:
        """0 on a tier that does not charge usage; contract prices apply to enterprise only."""
        if not self.plan(tier).charges_usage:
            return Decimal(0)
        if tier == Tier.ENTERPRISE and overrides is not None and kind in overrides.unit_prices:
            return overrides.unit_prices[UsageKind(kind)]
        return self.unit_prices[UsageKind(kind)]

    def hourly_api_limit(
        self, tier: Tier, overrides: ContractOverrides | None = None
    ) -> int | None:
        """API calls allowed per hour; None is no limit. A contract limit applies to enterprise."""
        if tier == Tier.ENTERPRISE and overrides is not None:
            if overrides.api_calls_per_hour is not None:
                return overrides.api_calls_per_hour
        return self.plan(tier).api_calls_per_hour


def _plan(tier: Tier, base_fee: str, per_hour: int | None, charges_usage: bool) -> TierPlan:
    return TierPlan(
        tier=tier,
        base_fee=Decimal(base_fee),
        api_calls_per_hour=per_hour,
        charges_usage=charges_usage,
    )


DEFAULT_CATALOG = PriceCatalog(
    currency="USD",
    plans={
        Tier.FREE: _plan(Tier.FREE, "0.00", 1_000, charges_usage=False),
        Tier.STARTER: _plan(Tier.STARTER, "10.00", 10_000, charges_usage=True),
        Tier.PROFESSIONAL: _plan(Tier.PROFESSIONAL, "50.00", 100_000, charges_usage=True),
        Tier.ENTERPRISE: _plan(Tier.ENTERPRISE, "500.00", None, charges_usage=True),
    },
    # Sub-cent unit prices are kept exact: lines are rounded once, after multiplying.
    unit_prices={
        UsageKind.API_CALL: Decimal("0.001"),
        UsageKind.LLM_TOKENS: Decimal("0.00002"),  # $0.02 per 1,000 tokens
        UsageKind.AGENT_EXECUTION: Decimal("0.01"),
    },
)


def tier_of(value: str) -> Tier:
    """A tier from outside text; an unknown one is the caller's to fix."""
    try:
        return Tier(value)
    except ValueError:
        known = ", ".join(t.value for t in TIER_ORDER)
        raise InvalidInput(f"unknown tier {value!r} (known: {known})") from None
