"""The periods the journeys bill: ended ones, so the API accepts them."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.periods import period_of, previous_period

THIS_MONTH = period_of(datetime.now(UTC))
LAST_MONTH = previous_period(THIS_MONTH)
TWO_MONTHS_AGO = previous_period(LAST_MONTH)
