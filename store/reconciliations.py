"""Named SQL for reconciliation: the ledger's side of a gateway page, found refunds, reports."""

from __future__ import annotations

# The ledger's movements under the gateway references one page names.
LEDGER_MOVEMENTS = """
SELECT kind, gateway_reference, bill_id, amount, currency FROM ledger_entries
WHERE gateway_reference = ANY($1::text[]) AND kind IN ('captured', 'refunded')"""

BILL_CURRENCIES = "SELECT id, currency FROM bills WHERE id = ANY($1::text[])"

CAPTURED_BILL = """
SELECT bill_id FROM ledger_entries
WHERE kind = 'captured' AND gateway_reference = $1::text"""

BILL_FOR_UPDATE = "SELECT id, customer_id, currency FROM bills WHERE id = $1::text FOR UPDATE"

# A reservation made under the refund's key becomes what the gateway says happened: even one
# released on a wrong "failed" (the money moved, so it is no longer refundable).
SETTLE_RESERVATION = """
UPDATE refunds SET status = 'succeeded', gateway_reference = $2::text,
                   charge_reference = COALESCE(charge_reference, $3::text), updated_at = now()
WHERE gateway_key = $1::text AND status <> 'succeeded'"""

RESERVATION_EXISTS = "SELECT 1 FROM refunds WHERE gateway_key = $1::text"

# A refund made outside the service (a dashboard) gets its row, so what is still
# refundable per capture counts it.
INSERT_FOUND_REFUND = """
INSERT INTO refunds (id, bill_id, amount, currency, reason, status, workflow_id,
                     gateway_reference, charge_reference, gateway_key)
VALUES ($1::text, $2::text, $3::numeric, $4::text, 'found by reconciliation', 'succeeded',
        $5::text, $6::text, $7::text, $8::text)
ON CONFLICT DO NOTHING"""

# The API (on demand) or the workflow (scheduled) writes the row first; the other finds it.
BEGIN_REPORT = """
INSERT INTO reconciliations (id, workflow_id, since, status)
VALUES ($1::text, $2::text, $3::timestamptz, 'running')
ON CONFLICT DO NOTHING
RETURNING id"""

FORGET_UNSTARTED = """
DELETE FROM reconciliations WHERE id = $1::text AND status = 'running' AND checked = 0"""

# The whole report each time, so a retried save writes the same row; a completed report
# is final.
SAVE_REPORT = """
UPDATE reconciliations
SET since = $2::timestamptz, status = $3::text, checked = $4::int, matched = $5::int,
    fixed = $6::jsonb, unresolved = $7::jsonb,
    finished_at = CASE WHEN $3::text = 'completed' THEN now() END
WHERE id = $1::text AND status = 'running'"""

GET_REPORT = """
SELECT id, workflow_id, since, status, checked, matched, fixed, unresolved, created_at,
       finished_at
FROM reconciliations WHERE id = $1::text OR workflow_id = $1::text
ORDER BY id = $1::text DESC LIMIT 1"""

REPORT_STATUS_FOR_UPDATE = "SELECT status FROM reconciliations WHERE id = $1::text FOR UPDATE"
