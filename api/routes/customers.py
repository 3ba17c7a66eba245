"""Customers: create (service key), read, attach a payment method token, usage totals."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import (
    CallerDep,
    StateDep,
    authorize_customer,
    hash_customer_key,
    new_customer_key,
    require_service,
)
from api.deps import AppState
from api.schemas import (
    ERRORS,
    CustomerCreate,
    CustomerCreated,
    CustomerOut,
    CustomerPage,
    KindTotal,
    PaymentMethodCreate,
    PaymentMethodOut,
    UsageTotals,
)
from billing.catalog import UsageKind
from billing.errors import CardNumberRefused, InvalidInput, NotFound
from billing.metering import kind_totals
from billing.money import format_money
from billing.payments import looks_like_card_number
from billing.periods import parse_period
from store import customers as store
from store import usage as usage_store
from store.customers import CustomerRow

log = logging.getLogger("api.customers")
router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=ERRORS)

GATEWAY_TOKEN = re.compile(r"^tok_[A-Za-z0-9_]{1,64}$")


def rate_text(rate: Decimal) -> str:
    """A fraction without trailing zeros: numeric(7,6) 0.082500 -> "0.0825", 0 -> "0"."""
    return f"{rate.normalize():f}" if rate else "0"


def customer_out(row: CustomerRow) -> CustomerOut:
    method = row.payment_method
    return CustomerOut(
        id=row.id,
        name=row.name,
        email=row.email,
        tier=row.tier,
        status=row.status,
        auto_upgrade=row.auto_upgrade,
        tax_rate=rate_text(row.tax_rate),
        currency=row.currency,
        started_at=row.started_at,
        created_at=row.created_at,
        payment_method=None if method is None else PaymentMethodOut(**vars(method)),
    )


async def existing_customer(state: AppState, customer_id: str) -> CustomerRow:
    row = await store.get_customer(state.pool, customer_id)
    if row is None:
        raise NotFound(f"no customer {customer_id!r}")
    return row


@router.post("", status_code=201, response_model=CustomerCreated)
async def create_customer(
    body: CustomerCreate,
    principal: CallerDep,
    state: StateDep,
) -> CustomerCreated:
    """The customer key is in this answer only; the store keeps its hash."""
    require_service(principal)
    now = datetime.now(UTC)
    started_at = body.started_at.astimezone(UTC) if body.started_at else now
    if started_at > now:
        raise InvalidInput("started_at is in the future; it is when the subscription began")
    key = new_customer_key()
    row = await store.create_customer(
        state.pool,
        store.NewCustomer(
            id="cus_" + secrets.token_hex(8),
            name=body.name,
            email=body.email,
            tier=body.tier.value,
            auto_upgrade=body.auto_upgrade,
            tax_rate=state.settings.default_tax_rate if body.tax_rate is None else body.tax_rate,
            currency=state.settings.currency,
            api_key_hash=hash_customer_key(key),
            started_at=started_at,
        ),
    )
    return CustomerCreated(**customer_out(row).model_dump(), api_key=key)


@router.get("", response_model=CustomerPage)
async def list_customers(
    principal: CallerDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=128, description="The last id seen")] = None,
) -> CustomerPage:
    require_service(principal)
    rows = await store.list_customers(state.pool, limit=limit, after=after)
    next_after = rows[-1].id if len(rows) == limit else None
    return CustomerPage(customers=[customer_out(r) for r in rows], next_after=next_after)


@router.get("/{customer_id}", response_model=CustomerOut)
async def get_customer(
    customer_id: str,
    principal: CallerDep,
    state: StateDep,
) -> CustomerOut:
    authorize_customer(principal, customer_id)
    return customer_out(await existing_customer(state, customer_id))


@router.post("/{customer_id}/payment-methods", status_code=201, response_model=PaymentMethodOut)
async def attach_payment_method(
    customer_id: str,
    body: PaymentMethodCreate,
    principal: CallerDep,
    state: StateDep,
) -> PaymentMethodOut:
    """The newest method becomes the default; the token is stored, never echoed or logged."""
    authorize_customer(principal, customer_id)
    # Before anything else: a card number must not reach the store, a log or an answer.
    if looks_like_card_number(body.token):
        raise CardNumberRefused(
            "this looks like a card number; send the gateway's token (tok_...) instead"
        )
    if GATEWAY_TOKEN.match(body.token) is None:
        raise InvalidInput("token must be a gateway token like tok_... (letters, digits, _)")
    await existing_customer(state, customer_id)
    method = await store.add_payment_method(
        state.pool,
        method_id="pm_" + secrets.token_hex(8),
        customer_id=customer_id,
        type_=body.type.value,
        token=body.token,
    )
    await _notify_attached(state, customer_id)
    return PaymentMethodOut(**vars(method))


async def _notify_attached(state: AppState, customer_id: str) -> None:
    """Let a waiting charge saga retry with the new method (`AppState.payment_method_attached`)."""
    try:
        await state.payment_method_attached(state, customer_id)
    except Exception:
        # The method is stored; a failed signal must not turn that into an error answer.
        log.exception("payment method attached for %s but the hook failed", customer_id)


@router.get("/{customer_id}/usage", response_model=UsageTotals)
async def usage_totals(
    customer_id: str,
    principal: CallerDep,
    state: StateDep,
    period: Annotated[str, Query(description="The billing period, YYYY-MM")],
) -> UsageTotals:
    """From Postgres, the record: each kind's cost is what its bill lines will say (one line
    per unit price, each rounded once), by the bill's own rule (billing.metering.kind_totals)."""
    authorize_customer(principal, customer_id)
    period = parse_period(period)
    customer = await existing_customer(state, customer_id)
    currency = customer.currency
    groups = await usage_store.usage_groups(state.pool, customer_id, period)
    found = kind_totals(groups, currency)
    totals: dict[str, KindTotal] = {}
    total_cost = Decimal(0)
    for kind in UsageKind:
        quantity, cost = found.get(kind, (0, Decimal(0)))
        total_cost += cost
        totals[kind.value] = KindTotal(quantity=quantity, cost=format_money(cost, currency))
    return UsageTotals(
        period=period,
        customer_id=customer_id,
        currency=currency,
        totals=totals,
        total_cost=format_money(total_cost, currency),
    )
