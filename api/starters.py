"""The free-to-starter conversion start, called on the usage hot path."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from billing.workflow_ids import auto_upgrade_id
from config.settings import Settings
from workflows.search_attributes import search_attributes
from workflows.upgrade_messages import UpgradeInput


async def start_auto_conversion(client: Client, settings: Settings, customer_id: str) -> bool:
    """Start (or join) the free-to-starter upgrade of this free stint; False if refused.

    However many requests cross the free limit together, one saga runs: they share the
    workflow id, and a start while it runs joins it (USE_EXISTING). Once it has closed, a
    customer who is free and convertible again (a manual downgrade) converts anew: the
    id may be reused, and every key the saga sends comes from this start's request id.
    """
    request = "auto-" + uuid.uuid4().hex[:16]
    try:
        await client.start_workflow(
            "UpgradeWorkflow",
            UpgradeInput(
                customer_id=customer_id,
                target_tier="starter",
                reason="auto_conversion",
                request_id=request,
            ),
            id=auto_upgrade_id(customer_id),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=search_attributes(customer_id=customer_id, tier="free"),
            static_summary=f"Convert {customer_id} from free to starter: over the free API limit",
        )
    except WorkflowAlreadyStartedError:
        return False
    return True
