"""Temporal's stored history holds ciphertext; the codec server gives the Web UI plain text.

The history is fetched by a client that has no codec at all, as the Temporal server and
its Web UI see it; then the payloads are posted to /codec/decode as the Web UI posts them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from observability.codec import ENCODING, KEY_ID
from tests.integration.harness import LiveStack, live_stack

from .journey import bill_period, customer, refund

REASON = "customer ada.lovelace@example.com asked for it"


@pytest.fixture
async def live(settings, db_pool, temporal_client, tmp_path) -> AsyncIterator[LiveStack]:
    async with live_stack(settings, db_pool, temporal_client, tmp_path) as stack:
        yield stack


async def test_history_is_ciphertext_and_the_codec_server_shows_it_plain(
    live: LiveStack, temporal_client: Client, temporal_address: str
):
    ada = await customer(live, tier="starter", token="tok_success")
    bill = await bill_period(live, temporal_client, ada["id"])
    workflow_id = await refund(live, temporal_client, bill["id"], "2.50", REASON)

    raw = await Client.connect(temporal_address, namespace=live.settings.temporal_namespace)
    assert raw.data_converter.payload_codec is None
    history = await raw.get_workflow_handle(workflow_id).fetch_history()
    stored = history.to_json_dict()
    # Nowhere in the stored history: not the input, the activity inputs, nor the summary.
    assert REASON not in json.dumps(stored)
    assert b"ada.lovelace" not in b"".join(e.SerializeToString() for e in history.events)

    started = history.events[0]
    assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    payload = started.workflow_execution_started_event_attributes.input.payloads[0]
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID] == live.settings.payload_codec_key_id.encode()
    summary = await raw.get_workflow_handle(workflow_id).describe()
    assert summary.raw_description.execution_config.user_metadata.summary.metadata[
        "encoding"
    ] == ENCODING  # fmt: skip

    # What the Web UI posts: the payloads of the event, as protobuf JSON.
    ui_body = json_format.MessageToDict(Payloads(payloads=[payload]))
    answer = await live.api.post(
        "/codec/decode",
        json=ui_body,
        headers={"X-Namespace": "default", "Origin": "http://localhost:8233", **live.auth},
    )
    assert answer.status_code == 200, answer.text
    [decoded] = json_format.ParseDict(answer.json(), Payloads()).payloads
    assert decoded.metadata["encoding"] == b"json/plain"
    shown = json.loads(decoded.data)
    assert shown["reason"] == REASON
    assert (shown["bill_id"], shown["amount"]) == (bill["id"], "2.50")

    # The service itself, with the codec, reads the saga's result as usual.
    result = await temporal_client.get_workflow_handle(workflow_id).result()
    assert result["outcome"] == "refunded"
