-- Money that reaches the gateway always reaches the ledger (issue 12).
--
-- A late payment of a written-off bill reverses the write-off by an entry, never an edit.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('issued', 'captured', 'refunded', 'written_off', 'voided',
                    'write_off_reversed'));

-- A refund names the capture it returns (an overpayment is refunded from the second
-- capture, not the first) and the key it was sent to the gateway with, so that an
-- answer lost on the way back is found again by that key.
ALTER TABLE refunds ADD COLUMN charge_reference text;
ALTER TABLE refunds ADD COLUMN gateway_key text;
CREATE UNIQUE INDEX refunds_gateway_key ON refunds (gateway_key) WHERE gateway_key IS NOT NULL;

-- One entry per gateway transaction, whichever path records it first (saga, webhook,
-- reconciliation): the entry keys already say so; this says it for the reference too.
CREATE UNIQUE INDEX ledger_entries_one_per_transaction ON ledger_entries (kind, gateway_reference)
    WHERE gateway_reference IS NOT NULL AND kind IN ('captured', 'refunded');

-- A customer's tier history, read to price late usage at the tier in force then.
CREATE INDEX tier_changes_customer ON tier_changes (customer_id, effective_at);
