"""Every committed history replays against today's workflow code.

A change that alters the commands a workflow issues for an existing history
(an activity added before the first one, reordered steps) fails here with a
non-determinism error, before it can strand a running saga in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.converter import DATA_CONVERTER
from worker import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(record["workflow_id"], record["history"])
        for record in json.loads(path.read_text())
    ]


# Histories recorded before issue 12 (unknown outcomes, turns, keys from requests): they
# must keep replaying under the `workflow.patched` guards, so they are never re-recorded.
BEFORE_ISSUE_12 = {
    "billing_cycle_paid_at_once",
    "charge_paid_after_dunning",
    "charge_uncollectible_after_dunning",
    "charge_paid_now_after_new_method",
    "bank_transfer_settled",
    "bank_transfer_past_deadline",
    "upgrade_paid",
    "upgrade_compensated",
    "refund_full",
    "refund_partial",
    "refund_refused",
    "billing_run_continue_as_new",
}


# Histories recorded before issue 15 (a cycle and its ChargeWorkflow for every bill, five
# activities; reads as activities): kept as `v2_*`, replayed under the issue-15 patches.
BEFORE_ISSUE_15 = {
    "bank_transfer_past_deadline",
    "bank_transfer_settled",
    "bank_transfer_settled_late",
    "billing_cycle_paid_at_once",
    "billing_run_continue_as_new",
    "charge_awaiting_payment_method",
    "charge_lost_answer_resolved",
    "charge_paid_after_dunning",
    "charge_paid_now_after_new_method",
    "charge_uncollectible_after_dunning",
    "dunning_downgrade_then_restored",
    "tier_changes_take_turns",
    "upgrade_compensated",
    "upgrade_paid",
}


def test_the_histories_from_before_issue_12_are_kept() -> None:
    assert {f"v1_{name}" for name in BEFORE_ISSUE_12} <= {p.stem for p in FILES}


def test_the_histories_from_before_issue_15_are_kept() -> None:
    assert {f"v2_{name}" for name in BEFORE_ISSUE_15} <= {p.stem for p in FILES}


def test_a_bill_paid_at_once_is_recorded_as_one_execution() -> None:
    (record,) = json.loads((HISTORIES / "billing_cycle_paid_at_once.json").read_text())
    assert record["workflow_id"].startswith("bill-")


def test_every_workflow_and_path_has_a_history() -> None:
    names = {p.stem for p in FILES}
    assert {
        "charge_lost_answer_resolved",
        "refund_lost_answer_resolved",
        "bank_transfer_settled_late",
        "charge_awaiting_payment_method",
        "tier_changes_take_turns",
        "dunning_downgrade_then_restored",
        "payment_found_by_reconciliation",
        "billing_cycle_paid_at_once",
        "charge_paid_after_dunning",
        "charge_uncollectible_after_dunning",
        "charge_paid_now_after_new_method",
        "bank_transfer_settled",
        "bank_transfer_past_deadline",
        "upgrade_paid",
        "upgrade_compensated",
        "refund_full",
        "refund_partial",
        "refund_refused",
        "billing_run_continue_as_new",
    } <= names
    types = {
        event["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
        for path in FILES
        for record in json.loads(path.read_text())
        for event in record["history"]["events"][:1]
    }
    assert types == {w.__name__ for w in WORKFLOWS}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    for history in load(path):
        await replayer.replay_workflow(history)
