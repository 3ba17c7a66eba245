"""Named SQL for the revenue report: each bill of a range of periods with its ledger sums.

Only facts are read: the ledger entries summed by kind, the charge attempts counted by
outcome, and the bill's own tax. The bill's state is folded from those sums by
`billing.ledger.state_from_totals`, the report's figures by `billing.revenue`.
"""

from __future__ import annotations

from billing.revenue import BillFacts
from store.db import Conn

# Two grouped subqueries, not one join: joining entries and attempts together would
# multiply every sum by the number of attempts.
BILLS_WITH_LEDGER_SUMS = """
WITH period_bills AS (
    SELECT id, customer_id, period, tier, currency, tax FROM bills
    WHERE period BETWEEN $1::char(7) AND $2::char(7) AND currency = $3::char(3)
), sums AS (
    SELECT e.bill_id,
           sum(e.amount) FILTER (WHERE e.kind = 'issued') AS issued,
           sum(e.amount) FILTER (WHERE e.kind = 'captured') AS captured,
           sum(e.amount) FILTER (WHERE e.kind = 'refunded') AS refunded,
           sum(e.amount) FILTER (WHERE e.kind = 'written_off') AS written_off,
           sum(e.amount) FILTER (WHERE e.kind = 'write_off_reversed') AS write_off_reversed,
           bool_or(e.kind = 'voided') AS voided
    FROM ledger_entries e JOIN period_bills b ON b.id = e.bill_id
    GROUP BY e.bill_id
), tries AS (
    SELECT a.bill_id,
           count(*) FILTER (WHERE a.status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE a.status = 'failed') AS failed
    FROM charge_attempts a JOIN period_bills b ON b.id = a.bill_id
    GROUP BY a.bill_id
)
SELECT b.id, b.customer_id, b.period::text AS period, b.tier, b.currency::text AS currency,
       b.tax,
       coalesce(s.issued, 0) AS issued,
       coalesce(s.captured, 0) AS captured,
       coalesce(s.refunded, 0) AS refunded,
       coalesce(s.written_off, 0) AS written_off,
       coalesce(s.write_off_reversed, 0) AS write_off_reversed,
       coalesce(s.voided, false) AS voided,
       coalesce(t.succeeded, 0)::int AS succeeded,
       coalesce(t.failed, 0)::int AS failed
FROM period_bills b
LEFT JOIN sums s ON s.bill_id = b.id
LEFT JOIN tries t ON t.bill_id = b.id
ORDER BY b.period, b.id"""


async def bill_facts(
    conn: Conn, first: str, last: str, currency: str
) -> dict[str, list[BillFacts]]:
    """Every bill of the periods first..last (inclusive) in `currency`, grouped by period."""
    grouped: dict[str, list[BillFacts]] = {}
    for row in await conn.fetch(BILLS_WITH_LEDGER_SUMS, first, last, currency):
        grouped.setdefault(row["period"], []).append(
            BillFacts(
                bill_id=row["id"],
                customer_id=row["customer_id"],
                period=row["period"],
                tier=row["tier"],
                currency=row["currency"],
                tax=row["tax"],
                issued=row["issued"],
                captured=row["captured"],
                refunded=row["refunded"],
                written_off=row["written_off"],
                write_off_reversed=row["write_off_reversed"],
                voided=row["voided"],
                succeeded_attempts=row["succeeded"],
                failed_attempts=row["failed"],
            )
        )
    return grouped
