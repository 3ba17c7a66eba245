"""The `read-bill-first` change made WITHOUT `workflow.patched`: what not to do.

Its own module so that the workflow sandbox imports nothing but workflow code.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.charge import ChargeWorkflow
    from workflows.charge_messages import ChargeInput, ChargeResult


@workflow.defn(name="ChargeWorkflow")
class UnguardedChargeWorkflow(ChargeWorkflow):
    @workflow.run
    async def run(self, inp: ChargeInput) -> ChargeResult:
        done = await self._read_bill_first(inp)
        if done is not None:
            return done
        return await self._collect(inp)
