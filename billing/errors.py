"""The domain's one error tree. Each error carries a stable machine `code`.

HTTP statuses are chosen in one place (`api/errors.py`), never here.

    BillingError
    ├── InvalidInput                 bad input the caller can fix
    │   └── CardNumberRefused        a raw card number where a gateway token belongs
    ├── Unauthenticated              no key, or an unknown key
    ├── Forbidden                    a customer key reaching another customer
    ├── NotFound
    ├── Conflict
    │   ├── PeriodAlreadyBilled      late usage for a billed period; a second cycle
    │   └── InvalidTransition        e.g. paying a void bill, upgrading to the same tier
    ├── RateLimited                  over the tier's hourly API-call limit
    ├── RefundRefused                above what is refundable, or nothing was paid
    └── DependencyUnavailable        Postgres, Redis, Temporal or the gateway is away
"""

from __future__ import annotations


class BillingError(Exception):
    """Base of every error the service raises on purpose."""

    code = "billing_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(BillingError):
    code = "invalid_input"


class CardNumberRefused(InvalidInput):
    code = "card_number_refused"


class Unauthenticated(BillingError):
    code = "unauthenticated"


class Forbidden(BillingError):
    code = "forbidden"


class NotFound(BillingError):
    code = "not_found"


class Conflict(BillingError):
    code = "conflict"


class PeriodAlreadyBilled(Conflict):
    code = "period_already_billed"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class RateLimited(BillingError):
    """Carries what the 429 headers need."""

    code = "rate_limited"

    def __init__(self, message: str, *, limit: int, remaining: int, reset_at: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.remaining = remaining
        self.reset_at = reset_at


class RefundRefused(BillingError):
    code = "refund_refused"


class DependencyUnavailable(BillingError):
    code = "dependency_unavailable"
