"""The worked example of changing a running workflow safely with `workflow.patched`.

`ChargeWorkflow` gained a first step, reading the bill (`READ_BILL_FIRST`), after
sagas had been recorded in `before_patch/`. Under `workflow.patched` those
histories still replay; the same change without the guard breaks them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.converter import DATA_CONVERTER
from worker import WORKFLOWS
from workflows.charge import READ_BILL_FIRST, ChargeWorkflow

from .unguarded import UnguardedChargeWorkflow

BEFORE = sorted((Path(__file__).parent / "before_patch").glob("*.json"))
AFTER = sorted((Path(__file__).parent / "histories").glob("*.json"))


def histories(paths: list[Path]) -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(r["workflow_id"], r["history"])
        for path in paths
        for r in json.loads(path.read_text())
        if r["workflow_id"].startswith("charge-")
    ]


def replayer(charge: type) -> Replayer:
    others = [w for w in WORKFLOWS if w is not ChargeWorkflow]
    return Replayer(workflows=[charge, *others], data_converter=DATA_CONVERTER)


async def test_histories_from_before_the_change_replay_under_patched() -> None:
    assert BEFORE, "the pre-change histories are committed"
    for history in histories(BEFORE):
        await replayer(ChargeWorkflow).replay_workflow(history)


async def test_the_unguarded_change_breaks_them_with_a_nondeterminism_error() -> None:
    for history in histories(BEFORE):
        with pytest.raises(workflow.NondeterminismError):
            await replayer(UnguardedChargeWorkflow).replay_workflow(history)


def patch_ids(paths: list[Path]) -> set[str]:
    """The patch markers a set of histories carries (their ids are base64 JSON payloads)."""
    found = set()
    for path in paths:
        for record in json.loads(path.read_text()):
            for event in record["history"]["events"]:
                marker = event.get("markerRecordedEventAttributes")
                if marker and marker["markerName"] == "core_patch":
                    data = marker["details"]["patch-data"]["payloads"][0]["data"]
                    found.add(json.loads(base64.b64decode(data))["id"])
    return found


def test_only_histories_recorded_after_the_change_carry_its_marker() -> None:
    assert READ_BILL_FIRST not in patch_ids(BEFORE)
    assert READ_BILL_FIRST in patch_ids(AFTER)
