"""Outbound events, pure: types, the body, secrets kept out, Standard Webhooks signatures, URLs."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from billing.errors import InvalidInput
from billing.events import (
    EventType,
    event_body,
    event_data,
    event_type,
    is_secret,
    new_secret,
    signature_headers,
)
from billing.outbound import (
    attempt_timeout,
    check_url,
    delivery_id,
    is_public,
    redelivery_id,
    refused_addresses,
)
from config.settings import Settings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_every_type_the_issue_names() -> None:
    assert {t.value for t in EventType} == {
        "customer.created",
        "customer.tier_changed",
        "bill.created",
        "bill.paid",
        "bill.payment_failed",
        "bill.uncollectible",
        "bill.refunded",
        "refund.failed",
        "usage.limit_warning",
        "usage.limit_reached",
        "reconciliation.discrepancy",
        "webhook_endpoint.disabled",
    }


def test_an_unknown_type_is_refused_by_name() -> None:
    assert event_type("bill.paid") is EventType.BILL_PAID
    with pytest.raises(ValueError, match="unknown event type 'bill.payed'"):
        event_type("bill.payed")


def test_tokens_and_keys_never_reach_data_at_any_depth() -> None:
    data = {
        "id": "cus_1",
        "api_key": "ck_secret",
        "payment_method": {"id": "pm_1", "type": "credit_card", "token": "tok_success"},
        "attempts": [{"token": "tok_x", "status": "failed", "Token": "tok_y"}],
        "endpoint": {"secret": "whsec_x", "previous_secret": "whsec_y", "url": "https://a"},
    }
    plain = event_data(data)
    text = json.dumps(plain)
    for leaked in ("ck_secret", "tok_", "whsec_"):
        assert leaked not in text
    assert plain["payment_method"] == {"id": "pm_1", "type": "credit_card"}
    assert plain["attempts"] == [{"status": "failed"}]


def test_money_is_a_decimal_string_and_times_iso() -> None:
    plain = event_data({"total": Decimal("590.00"), "at": NOW, "tier": EventType.BILL_PAID})
    assert plain == {"total": "590.00", "at": "2026-05-01T12:00:00Z", "tier": "bill.paid"}


def test_data_that_json_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot hold a object"):
        event_data({"x": object()})


def test_the_body_has_the_six_fields_and_is_stable() -> None:
    args = {
        "event_id": "evt_1",
        "type": "customer.created",
        "created_at": NOW,
        "customer_id": "cus_1",
        "sequence": 3,
        "data": {"id": "cus_1", "token": "tok_success"},
    }
    body = event_body(**args)
    assert body == event_body(**args)  # every attempt sends the same bytes
    assert json.loads(body) == {
        "id": "evt_1",
        "type": "customer.created",
        "created_at": "2026-05-01T12:00:00Z",
        "customer_id": "cus_1",
        "sequence": 3,
        "data": {"id": "cus_1"},
    }


def test_secrets_are_whsec_base64_and_differ() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert is_secret(first)
    assert not is_secret("whsec_not base64!")
    assert not is_secret("sk_" + first)


def _headers(secrets: list[str], body: str = '{"a":1}') -> dict[str, str]:
    now = datetime.now(UTC)
    return signature_headers(event_id="evt_1", timestamp=now, body=body, signing_secrets=secrets)


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    headers = _headers([secret])
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify('{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify('{"a":1}', headers)


def test_during_a_rotation_both_secrets_verify() -> None:
    old, new = new_secret(), new_secret()
    headers = _headers([new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify('{"a":1}', headers)


def test_no_secret_no_signature() -> None:
    with pytest.raises(ValueError, match="at least one"):
        _headers([])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hooks", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("https:///hooks", "needs a host"),
        ("https://user:pw@example.com/hooks", "credentials"),
        ("https://example.com/hooks#x", "fragment"),
        ("https://example.com:99999/hooks", "not a valid URL"),
        ("http://127.0.0.1:3000/hooks", "private, loopback"),
        ("http://10.0.0.5/hooks", "private, loopback"),
        ("http://169.254.169.254/latest/meta-data", "private, loopback"),
        ("http://[::1]/hooks", "private, loopback"),
        ("http://[::ffff:127.0.0.1]/hooks", "private, loopback"),
        ("http://localhost:8000/hooks", "loopback"),
        ("https://" + "a" * 2050 + ".com", "at most 2048"),
    ],
)
def test_urls_that_are_refused_outside_dev(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_url(url, allow_private=False)


def test_public_urls_pass_and_dev_may_call_loopback() -> None:
    assert check_url("https://hooks.example.com/x?y=1", allow_private=False)
    assert check_url("http://93.184.216.34/hooks", allow_private=False)
    assert check_url("http://127.0.0.1:3000/hooks", allow_private=True)
    with pytest.raises(InvalidInput):
        check_url("gopher://127.0.0.1/", allow_private=True)


def test_resolved_addresses_refused_if_any_is_private() -> None:
    public = ipaddress.ip_address("93.184.216.34")
    private = ipaddress.ip_address("192.168.1.2")
    shared = ipaddress.ip_address("100.64.0.1")  # carrier-grade NAT: not global
    assert is_public(public)
    assert refused_addresses([public, private, shared]) == [private, shared]
    assert not is_public(ipaddress.ip_address("224.0.0.1"))


def test_private_targets_default_by_environment() -> None:
    assert Settings(environment="dev").webhooks_reach_private
    assert Settings(environment="test").webhooks_reach_private
    assert not Settings(environment="test", webhook_allow_private=False).webhooks_reach_private
    production = {
        "environment": "production",
        "billing_api_key": "sk_live_" + "k" * 24,
        "gateway_webhook_secret": "whsec_" + "s" * 24,
        "payload_codec_key": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
    }
    assert not Settings(**production).webhooks_reach_private
    assert Settings(**production, webhook_allow_private=True).webhooks_reach_private


def test_retry_schedule_is_a_setting_of_about_three_days() -> None:
    delays = Settings().webhook_delays
    assert delays[0] == timedelta(seconds=5)
    assert timedelta(days=3) <= sum(delays, timedelta()) <= timedelta(days=4)
    assert Settings(webhook_retry_schedule="200ms,200ms,500ms").webhook_delays[-1] == timedelta(
        milliseconds=500
    )
    with pytest.raises(ValueError, match="not a duration"):
        Settings(webhook_retry_schedule="5,10")


def test_ids_carry_the_event_and_the_endpoint() -> None:
    assert delivery_id("evt_1", "we_2") == "webhook-evt_1-we_2"
    assert redelivery_id("evt_1", "we_2", "k1") == "webhook-evt_1-we_2-redeliver-k1"
    assert attempt_timeout(timedelta(seconds=10)) == timedelta(seconds=40)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["token", "api_key", "id", "x"]), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_no_secret_key_survives_any_shape(data: object) -> None:
    def keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value) | set().union(*(keys(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(keys(v) for v in value))
        return set()

    assert not keys(event_data({"d": data})) & {"token", "api_key"}
