"""The Temporal Web UI, filtered by CustomerId: a customer's workflows and their summaries."""

from __future__ import annotations

import json
from urllib.parse import quote

from playwright.async_api import Browser, BrowserContext

from tests.browser.conftest import DOCS, Company, encrypted_payloads

# The list's columns, as the UI keeps them in localStorage: the billing search attributes.
COLUMNS = ["Status", "Workflow ID", "Type", "BillingPeriod", "Tier", "BillId", "Start"]
_SET_COLUMNS = "window.localStorage.setItem('namespace-workflow-table-columns', {});".format(
    json.dumps(json.dumps({"default": [{"label": c, "pinned": i < 2}
                                       for i, c in enumerate(COLUMNS)]}))
)  # fmt: skip


async def ui_context(browser: Browser, company: Company) -> BrowserContext:
    """The UI as a user sets it up: billing columns; the codec server if payloads are sealed."""
    context = await browser.new_context(viewport={"width": 1680, "height": 900})
    await context.add_init_script(_SET_COLUMNS)
    if encrypted_payloads():
        codec = json.dumps(json.dumps(str(company.live.api.base_url).rstrip("/") + "/codec"))
        # What the UI's "Codec Server" settings store; `override` makes it win over the
        # dev server's own (empty) codec configuration.
        await context.add_init_script(
            f"window.localStorage.setItem('endpoint', {codec});"
            "window.localStorage.setItem('overrideRemoteCodecConfiguration', 'true');"
        )
    return context


async def test_the_web_ui_finds_a_customers_workflows_by_customer_id(
    browser: Browser, company: Company
):
    customer = company.history.customers["Enterprise Co"]["id"]
    query = f"CustomerId = '{customer}'"
    summaries: dict[str, str] = {}
    async for found in company.temporal.list_workflows(query):
        described = await company.temporal.get_workflow_handle(found.id).describe()
        summaries[found.id] = await described.static_summary() or ""
    # Three months billed, each paid at once by the cycle itself (no charge saga: issue 15),
    # and one refund, each summarised.
    assert sorted(wid.split("-")[0] for wid in summaries) == ["bill"] * 3 + ["refund"]
    assert all(summaries.values())

    context = await ui_context(browser, company)
    try:
        page = await context.new_page()
        await page.goto(f"{company.ui_url}/namespaces/default/workflows?query={quote(query)}")
        await page.wait_for_function(
            "n => document.querySelectorAll('table tbody tr').length === n", arg=len(summaries)
        )
        listed = await page.locator("table tbody tr").evaluate_all(
            "rows => rows.map(row => row.innerText)"
        )
        for wid in summaries:
            assert sum(wid in text for text in listed) == 1, wid
        months = set(company.history.months[3:])
        assert {m for m in months if any(m in text for text in listed)} == months
        DOCS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=DOCS / "temporal-ui-customer.png")

        # Each workflow's page shows the summary its saga was started with (User Metadata).
        for wid, summary in sorted(summaries.items()):
            await page.goto(f"{company.ui_url}/namespaces/default/workflows/{quote(wid)}")
            await page.get_by_role("tab", name="User Metadata").click()
            # The UI renders summaries as markdown in an iframe of their own.
            shown = page.frame_locator("#user-metadata-summary").get_by_text(summary, exact=True)
            await shown.wait_for()
            if wid.startswith("refund-"):
                details = page.frame_locator("#user-metadata-current-details")
                await details.get_by_text("refunded", exact=False).wait_for()
                await page.screenshot(path=DOCS / "temporal-ui-workflow.png")
    finally:
        await context.close()
