"""The free-to-starter conversion start, called on the usage hot path."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from billing.messages import UpgradeInput
from billing.settings import Settings
from billing.workflow_ids import auto_upgrade_id
from workflows.search_attributes import search_attributes


async def start_auto_conversion(client: Client, settings: Settings, customer_id: str) -> bool:
    """Start the free-to-starter upgrade once; True if this call started it.

    The workflow id is fixed per customer and REJECT_DUPLICATE refuses a second
    start even after the first has closed, so however many requests cross the
    free limit together, one saga runs.
    """
    try:
        await client.start_workflow(
            "UpgradeWorkflow",
            UpgradeInput(customer_id=customer_id, target_tier="starter", reason="auto_conversion"),
            id=auto_upgrade_id(customer_id),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=search_attributes(customer_id=customer_id, tier="free"),
            static_summary=f"Convert {customer_id} from free to starter: over the free API limit",
        )
    except WorkflowAlreadyStartedError:
        return False
    return True
