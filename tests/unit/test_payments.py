"""How a saga's charge outcome is recorded as an attempt."""

from __future__ import annotations

import pytest

from billing.payments import ChargeStatus, recorded_attempt_status


@pytest.mark.parametrize(
    ("outcome", "recorded"),
    [
        ("succeeded", ChargeStatus.SUCCEEDED),
        ("pending", ChargeStatus.PENDING),
        ("failed", ChargeStatus.FAILED),
        ("no_method", ChargeStatus.FAILED),  # a try that found nothing to charge failed
        ("not_due", None),  # no try at all
    ],
)
def test_recorded_attempt_status(outcome, recorded):
    assert recorded_attempt_status(outcome) is recorded


@pytest.mark.parametrize("outcome", ["in_flight", "unknown"])
def test_an_unresolved_outcome_is_never_recorded(outcome):
    with pytest.raises(ValueError, match="resolved, not recorded"):
        recorded_attempt_status(outcome)
