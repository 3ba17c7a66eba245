"""The worker's settings, read by a saga once and then fixed in its history."""

from __future__ import annotations

from temporalio import activity

from activities.config_messages import ChargePolicy
from config.settings import Settings


class ConfigActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn
    async def charge_policy(self) -> ChargePolicy:
        """Workflows cannot read the environment (determinism); they ask once, here."""
        s = self.settings
        return ChargePolicy(
            dunning_delays=s.dunning_delays,
            bank_transfer_deadline=s.bank_transfer_deadline_delta,
            dunning_exhausted_action=s.dunning_exhausted_action,
            billing_run_concurrency=s.billing_run_concurrency,
            billing_run_page_size=s.billing_run_page_size,
            gateway_retry_budget=s.gateway_retry_budget_delta,
        )
