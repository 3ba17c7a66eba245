"""The OpenAPI schema states the rules the API enforces, and only rules it enforces.

Each pattern the schema states is checked against the code that enforces the rule: a value
the pattern admits is accepted there (and, where the pattern is exact, a value it refuses is
refused there). Rules no JSON Schema can state, left to the routes' docstrings:
- `started_at` (customers) and `occurred_at` (usage) ahead of the server's clock;
- usage before the customer's `started_at`; a refund above what is refundable (409);
- a revenue range with `from` after `to`, or longer than 36 months;
- a webhook URL naming a private or loopback address (unless WEBHOOKS_REACH_PRIVATE);
- a refund amount with decimals in a currency that has none (JPY);
- anything that depends on what is stored: an unknown id is a 404, and a paging cursor
  (`after` of /v1/events and of an endpoint's deliveries) naming nothing a 422.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.common.v1 import Payloads

from api.app import create_app
from api.flows import AMOUNT_PATTERN, RefundBody
from api.ingest.decode import BatchIn, openapi_body
from api.schemas import (
    EMAIL_PATTERN,
    GATEWAY_TOKEN,
    NO_NUL,
    PERIOD_PATTERN,
    TAX_RATE_PATTERN,
    CustomerCreate,
    UsageBatch,
)
from api.webhook_schemas import OVERLAP_PATTERN, URL_PATTERN, RotateSecret
from billing.errors import InvalidInput
from billing.money import parse_money
from billing.outbound import check_url
from billing.payments import looks_like_card_number
from billing.periods import parse_period
from config.settings import Settings

BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2,3})?={0,2}$"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(environment="test")).openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m.upper()} {p}", op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def _string_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return next((b for b in schema.get("anyOf", [schema]) if b.get("type") == "string"), schema)


def _accepted_period(text: str) -> bool:
    try:
        parse_period(text)
    except InvalidInput:
        return False
    return True


@given(st.text(alphabet="0123456789-\n ", max_size=9) | st.from_regex(PERIOD_PATTERN))
def test_the_period_pattern_is_exactly_parse_period(text):
    assert (re.fullmatch(PERIOD_PATTERN, text) is not None) == _accepted_period(text)


@given(st.from_regex(TAX_RATE_PATTERN, fullmatch=True))
def test_a_tax_rate_the_schema_admits_is_accepted(rate):
    body = CustomerCreate.model_validate({"name": "A", "email": "a@b.co", "tax_rate": rate})
    assert body.tax_rate == Decimal(rate)


@given(st.from_regex(AMOUNT_PATTERN, fullmatch=True))
def test_a_refund_amount_the_schema_admits_is_accepted(amount):
    parsed = RefundBody.model_validate({"amount": amount, "reason": "r"}).amount
    assert parsed is not None
    assert parse_money(parsed, "USD") > 0


@pytest.mark.parametrize("amount", ["0", "0.00", "1.234", "-1", "1e3", "1000000000000000000"])
def test_a_refund_amount_the_route_refuses_is_outside_the_schema(amount):
    assert re.fullmatch(AMOUNT_PATTERN, amount) is None


@given(st.from_regex(GATEWAY_TOKEN.pattern, fullmatch=True))
def test_a_token_the_schema_admits_is_a_gateway_token_not_a_card(token):
    assert GATEWAY_TOKEN.fullmatch(token)
    assert not looks_like_card_number(token)


def test_a_token_with_a_trailing_newline_is_not_a_gateway_token():
    assert GATEWAY_TOKEN.fullmatch("tok_success\n") is None


@given(st.text(alphabet="ab@.\x00 \n", min_size=3, max_size=9))
def test_the_email_pattern_is_exactly_the_check(email):
    try:
        CustomerCreate.model_validate({"name": "A", "email": email})
        accepted = True
    except ValidationError:
        accepted = False
    assert (re.fullmatch(EMAIL_PATTERN, email) is not None) == accepted


@given(st.from_regex(URL_PATTERN, fullmatch=True).filter(lambda u: len(u) <= 2048))
def test_a_webhook_url_the_schema_admits_is_accepted(url):
    assert check_url(url, allow_private=True) == url


@given(st.from_regex(OVERLAP_PATTERN, fullmatch=True))
def test_an_overlap_the_schema_admits_is_accepted(overlap):
    RotateSecret.model_validate({"overlap": overlap})


@given(st.from_regex(BASE64, fullmatch=True))
def test_base64_the_codec_schema_admits_is_read_by_protobuf(data):
    json_format.ParseDict({"payloads": [{"data": data, "metadata": {"k": data}}]}, Payloads())


def test_every_path_and_text_query_parameter_states_its_pattern(spec):
    missing = []
    for name, op in _operations(spec):
        for param in op.get("parameters", []):
            schema = _string_schema(param["schema"])
            if param["in"] in ("path", "query") and schema.get("type") == "string":
                if "pattern" not in schema:
                    missing.append(f"{name} {param['name']}")
    assert missing == []


def test_ids_in_paths_refuse_only_the_nul(spec):
    params = spec["paths"]["/v1/bills/{bill_id}/refunds"]["post"]["parameters"]
    [bill_id] = [p for p in params if p["name"] == "bill_id"]
    assert bill_id["schema"]["pattern"] == NO_NUL


@pytest.mark.parametrize(
    "operation", ["/v1/events", "/v1/webhook-endpoints/{endpoint_id}/deliveries"]
)
def test_cursors_that_must_name_a_row_are_never_empty(spec, operation):
    params = spec["paths"][operation]["get"]["parameters"]
    [after] = [p for p in params if p["name"] == "after"]
    assert _string_schema(after["schema"])["minLength"] == 1


def test_period_bodies_and_queries_state_the_period(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["PeriodBody"]["properties"]["period"]["pattern"] == PERIOD_PATTERN
    usage = spec["paths"]["/v1/customers/{customer_id}/usage"]["get"]["parameters"]
    [period] = [p for p in usage if p["name"] == "period"]
    assert (period["required"], period["schema"]["pattern"]) == (True, PERIOD_PATTERN)


def test_the_revenue_report_states_which_parameters_go_together(spec):
    [selection] = spec["paths"]["/v1/reports/revenue"]["get"]["parameters"]
    assert (selection["style"], selection["explode"]) == ("form", True)
    branches = selection["schema"]["oneOf"]
    assert [sorted(b["required"]) for b in branches] == [["period"], ["from", "to"]]
    assert all(b["additionalProperties"] is False for b in branches)


def test_customer_and_payment_method_bodies_state_their_rules(spec):
    schemas = spec["components"]["schemas"]
    customer = schemas["CustomerCreate"]["properties"]
    assert customer["name"]["pattern"] == NO_NUL
    assert customer["email"]["pattern"] == EMAIL_PATTERN
    assert _string_schema(customer["tax_rate"])["pattern"] == TAX_RATE_PATTERN
    assert schemas["Tier"]["enum"] == ["free", "starter", "professional", "enterprise"]
    token = schemas["PaymentMethodCreate"]["properties"]["token"]
    assert token["pattern"] == GATEWAY_TOKEN.pattern
    assert set(schemas["PaymentMethodCreate"]["required"]) == {"type", "token"}


def test_refund_and_endpoint_bodies_state_their_rules(spec):
    schemas = spec["components"]["schemas"]
    amount = _string_schema(schemas["RefundBody"]["properties"]["amount"])
    assert amount["pattern"] == AMOUNT_PATTERN
    update = schemas["EndpointUpdate"]
    assert update["minProperties"] == 1
    assert _string_schema(update["properties"]["url"])["pattern"] == URL_PATTERN
    assert schemas["EndpointCreate"]["properties"]["events"]["uniqueItems"] is True


def _constraints(node: dict[str, Any]) -> dict[str, Any]:
    keys = ("minLength", "maxLength", "exclusiveMinimum", "maximum", "minItems", "maxItems")
    return {k: node[k] for k in keys if k in node}


def test_the_usage_body_states_what_the_msgspec_structs_enforce():
    """The pydantic models document the route; msgspec (api/ingest/decode.py) enforces it."""
    stated = openapi_body(UsageBatch)["requestBody"]["content"]["application/json"]["schema"]
    enforced = msgspec.json.schema(BatchIn)
    defs = enforced["$defs"]
    batch, event = defs["BatchIn"], defs["EventIn"]
    assert _constraints(stated["properties"]["events"]) == _constraints(
        batch["properties"]["events"]
    )
    item = stated["properties"]["events"]["items"]
    assert set(item["required"]) == set(event["required"])
    assert item["additionalProperties"] is False
    assert batch["additionalProperties"] is event["additionalProperties"] is False
    for name, rule in event["properties"].items():
        assert _constraints(item["properties"][name]) == _constraints(rule), name
    assert sorted(item["properties"]["kind"]["enum"]) == sorted(defs["UsageKind"]["enum"])
    # Checked outside the Struct (once per batch; by Postgres): stated all the same.
    assert item["properties"]["event_id"]["pattern"] == "^[A-Za-z0-9_.:-]+$"
    assert item["properties"]["customer_id"]["pattern"] == NO_NUL


def test_observability_imports_nothing_from_the_api():
    imported = set()
    for path in (Path(__file__).parents[2] / "observability").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module.split(".")[0]))
            elif isinstance(node, ast.Import):
                imported.update((path.name, a.name.split(".")[0]) for a in node.names)
    assert [name for name, top in imported if top == "api"] == []
