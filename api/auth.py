"""Bearer keys: the service key may do everything; a customer key reaches its own customer only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import AppState, get_state
from billing.errors import Forbidden, Unauthenticated
from store.customers import customer_of_key

CUSTOMER_KEY_PREFIX = "ck_"

# auto_error=False: a missing header becomes our 401 envelope, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="The service key or a customer key")

StateDep = Annotated[AppState, Depends(get_state)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the service (customer_id None) or one customer."""

    kind: Literal["service", "customer"]
    customer_id: str | None = None


def new_customer_key() -> str:
    """A random key shown once to its customer; only its hash is stored."""
    return CUSTOMER_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_customer_key(key: str) -> str:
    # A fast, unsalted hash is right here: the key carries 256 random bits, so neither
    # dictionaries nor brute force apply, and an unsalted digest lets the unique index find it.
    return hashlib.sha256(key.encode()).hexdigest()


async def get_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    state: StateDep,
) -> Principal:
    """401 for a missing or unknown key; never says which of the two it was."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated("send `Authorization: Bearer <key>`")
    key = credentials.credentials
    service_key = state.settings.billing_api_key.get_secret_value()
    if hmac.compare_digest(key.encode(), service_key.encode()):
        return Principal(kind="service")
    if key.startswith(CUSTOMER_KEY_PREFIX):
        customer_id = await customer_of_key(state.pool, hash_customer_key(key))
        if customer_id is not None:
            return Principal(kind="customer", customer_id=customer_id)
    raise Unauthenticated("the API key is not valid")


CallerDep = Annotated[Principal, Depends(get_principal)]


def authorize_customer(principal: Principal, customer_id: str) -> None:
    """The service reaches every customer; a customer key only its own."""
    if principal.kind == "service":
        return
    if principal.customer_id != customer_id:
        raise Forbidden("this key may only reach its own customer")


def require_service(principal: Principal) -> None:
    """Routes that only the operator's service key may call."""
    if principal.kind != "service":
        raise Forbidden("this route needs the service key")
