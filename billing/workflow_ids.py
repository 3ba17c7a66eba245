"""Workflow ids that carry meaning; with REJECT_DUPLICATE they make duplicates impossible."""

from __future__ import annotations


def billing_cycle_id(customer_id: str, period: str) -> str:
    """One billing cycle per customer and period, ever."""
    return f"bill-{customer_id}-{period}"


def charge_id(bill_id: str) -> str:
    """One charge saga (with its dunning) per bill."""
    return f"charge-{bill_id}"


def pay_now_id(bill_id: str, request_id: str) -> str:
    """One try per pay-now request, beside the bill's dunning saga (`charge_id`)."""
    return f"{charge_id(bill_id)}-pay-{request_id}"


def auto_upgrade_id(customer_id: str) -> str:
    """The free-to-starter conversion starts once per customer, however many events cross."""
    return f"upgrade-{customer_id}-auto-starter"


def manual_upgrade_id(customer_id: str, tier: str, request_id: str) -> str:
    return f"upgrade-{customer_id}-{tier}-{request_id}"


def refund_id(bill_id: str, request_id: str) -> str:
    return f"refund-{bill_id}-{request_id}"


def billing_run_id(period: str) -> str:
    """One billing run per period; a second request finds the first."""
    return f"billing-run-{period}"


def payment_received_id(gateway_reference: str) -> str:
    """One recording of a gateway capture, whichever path (webhook, reconciliation) finds it."""
    return f"payment-{gateway_reference}"


def reconciliation_id(request_id: str) -> str:
    return f"reconciliation-{request_id}"


def subscription_id(customer_id: str) -> str:
    """The customer's tier changes, one at a time, in arrival order."""
    return f"subscription-{customer_id}"


def overpayment_refund_id(bill_id: str, gateway_reference: str) -> str:
    return f"refund-{bill_id}-overpayment-{gateway_reference}"
