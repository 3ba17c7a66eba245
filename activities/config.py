"""The worker's settings, read by a saga once and then fixed in its history."""

from __future__ import annotations

from temporalio import activity

from activities.config_messages import ChargePolicy
from config.settings import Settings


def charge_policy_of(settings: Settings) -> ChargePolicy:
    """The settings a saga fixes in its history; `charge_policy` and `open_cycle` return it."""
    return ChargePolicy(
        dunning_delays=settings.dunning_delays,
        bank_transfer_deadline=settings.bank_transfer_deadline_delta,
        dunning_exhausted_action=settings.dunning_exhausted_action,
        billing_run_concurrency=settings.billing_run_concurrency,
        billing_run_page_size=settings.billing_run_page_size,
        gateway_retry_budget=settings.gateway_retry_budget_delta,
    )


class ConfigActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn
    async def charge_policy(self) -> ChargePolicy:
        """Workflows cannot read the environment (determinism); they ask once, here."""
        return charge_policy_of(self.settings)
