"""Who is calling and on what terms, cached per API process and never trusted blindly.

A customer's usage plan is cached with its stamp; `record_usage` refuses a stamp that is no
longer current (a tier change, a new payment method, new contract terms), and the caller
forgets the plan and tries again with a fresh one. A customer key is cached as the
customer it names; `record_usage` checks the key's hash against that customer too.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from api.auth import CUSTOMER_KEY_PREFIX, hash_customer_key
from billing.catalog import ContractOverrides, PriceCatalog, Tier
from billing.errors import Forbidden, Unauthenticated
from billing.metering import UsagePlan, plan_for
from store import customers, usage_plans

_MAX_ENTRIES = 100_000  # bounded memory: the oldest entry goes first
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Caller:
    """The service (customer_id None) or one customer, with its key's hash to re-check."""

    customer_id: str | None
    key_hash: str | None

    def authorize(self, customer_id: str) -> None:
        """The service reaches every customer; a customer key only its own."""
        if self.customer_id is not None and self.customer_id != customer_id:
            raise Forbidden("this key may only reach its own customer")


@dataclass(frozen=True, slots=True)
class StampedPlan:
    plan: UsagePlan
    stamp: str


def _bounded_put(cache: dict[str, _V], key: str, value: _V) -> None:
    if len(cache) >= _MAX_ENTRIES:
        del cache[next(iter(cache))]
    cache[key] = value


class PlanCache:
    def __init__(self, pool: asyncpg.Pool, catalog: PriceCatalog, service_key: str) -> None:
        self._pool = pool
        self._catalog = catalog
        self._service_key = service_key.encode()
        self._plans: dict[str, StampedPlan] = {}
        self._keys: dict[str, str] = {}

    async def caller(self, authorization: str | None) -> Caller:
        """401 for a missing or unknown key; never says which of the two it was."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthenticated("send `Authorization: Bearer <key>`")
        if hmac.compare_digest(key.encode(), self._service_key):
            return Caller(None, None)
        if key.startswith(CUSTOMER_KEY_PREFIX):
            key_hash = hash_customer_key(key)
            customer_id = self._keys.get(key_hash)
            if customer_id is None:
                customer_id = await customers.customer_of_key(self._pool, key_hash)
                if customer_id is not None:
                    _bounded_put(self._keys, key_hash, customer_id)
            if customer_id is not None:
                return Caller(customer_id, key_hash)
        raise Unauthenticated("the API key is not valid")

    def forget_key(self, key_hash: str) -> None:
        self._keys.pop(key_hash, None)

    async def plans(self, customer_ids: list[str]) -> dict[str, StampedPlan]:
        """The customers' plans, from the cache or one read for all that are missing."""
        plans = self._plans
        found = {c: plans[c] for c in customer_ids if c in plans}
        missing = [c for c in customer_ids if c not in found]
        if missing:
            for cid, row in (await usage_plans.plan_rows(self._pool, missing)).items():
                stamped = StampedPlan(self._plan(row), row.stamp)
                _bounded_put(plans, cid, stamped)
                found[cid] = stamped
        return found

    def forget(self, customer_ids: list[str]) -> None:
        for cid in customer_ids:
            self._plans.pop(cid, None)

    def _plan(self, row: usage_plans.PlanRow) -> UsagePlan:
        return plan_for(
            self._catalog,
            customer_id=row.id,
            tier=Tier(row.tier),
            overrides=ContractOverrides.model_validate(row.overrides),
            started_at=row.started_at,
            tier_since=row.tier_since,
            auto_upgrade=row.auto_upgrade,
            has_payment_method=row.has_payment_method,
            active=row.status == "active",
        )
