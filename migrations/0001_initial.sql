-- The system of record. Money is numeric, never float; every bill figure
-- is derivable from `ledger_entries`.

CREATE TABLE customers (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    email         text NOT NULL,
    tier          text NOT NULL CHECK (tier IN ('free', 'starter', 'professional', 'enterprise')),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    auto_upgrade  boolean NOT NULL DEFAULT true,
    tax_rate      numeric(7, 6) NOT NULL CHECK (tax_rate >= 0 AND tax_rate < 1),
    currency      char(3) NOT NULL DEFAULT 'USD',
    -- Enterprise contract overrides: {"unit_prices": {kind: "0.0005"}, "api_calls_per_hour": 500000}
    overrides     jsonb NOT NULL DEFAULT '{}'::jsonb,
    api_key_hash  text NOT NULL UNIQUE,
    started_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payment_methods (
    id           text PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers (id),
    type         text NOT NULL CHECK (type IN ('credit_card', 'debit_card', 'bank_transfer', 'paypal')),
    -- A gateway token (tok_...), never a card number.
    token        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX payment_methods_customer ON payment_methods (customer_id, created_at DESC);

-- Tier changes, so that history explains every price a customer paid.
CREATE TABLE tier_changes (
    id           bigserial PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers (id),
    from_tier    text NOT NULL,
    to_tier      text NOT NULL,
    reason       text NOT NULL,
    workflow_id  text,
    -- When the new tier took effect (started_at for the tier a customer was created with).
    effective_at timestamptz NOT NULL,
    -- One change per workflow step, however often the activity retries.
    idempotency_key text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE usage_events (
    customer_id  text NOT NULL REFERENCES customers (id),
    event_id     text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('api_call', 'llm_tokens', 'agent_execution')),
    quantity     bigint NOT NULL CHECK (quantity > 0),
    occurred_at  timestamptz NOT NULL,
    period       char(7) NOT NULL,
    tier         text NOT NULL,
    unit_price   numeric(20, 10) NOT NULL,
    -- quantity * unit_price, unrounded: lines are rounded once, per line.
    cost         numeric(30, 10) NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, event_id)
);
CREATE INDEX usage_events_period ON usage_events (customer_id, period, kind);

CREATE TABLE bills (
    id           text PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers (id),
    period       char(7) NOT NULL,
    -- 'cycle': the monthly bill; 'upgrade': a prorated bill issued by a tier change.
    kind         text NOT NULL CHECK (kind IN ('cycle', 'upgrade')),
    tier         text NOT NULL,
    currency     char(3) NOT NULL,
    lines        jsonb NOT NULL,
    subtotal     numeric(20, 2) NOT NULL CHECK (subtotal >= 0),
    tax          numeric(20, 2) NOT NULL CHECK (tax >= 0),
    total        numeric(20, 2) NOT NULL CHECK (total = subtotal + tax),
    workflow_id  text NOT NULL,
    -- The issuing step's key: an activity retried after a crash finds its bill.
    idempotency_key text NOT NULL UNIQUE,
    void_reason  text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- A period is billed once per customer.
CREATE UNIQUE INDEX bills_one_cycle_per_period ON bills (customer_id, period) WHERE kind = 'cycle';
CREATE INDEX bills_customer ON bills (customer_id, created_at);
CREATE INDEX bills_period ON bills (period);

-- Append-only: every money movement. A bill's paid, refunded and status derive from it.
CREATE TABLE ledger_entries (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    bill_id          text NOT NULL REFERENCES bills (id),
    customer_id      text NOT NULL REFERENCES customers (id),
    kind             text NOT NULL CHECK (kind IN ('issued', 'captured', 'refunded', 'written_off', 'voided')),
    amount           numeric(20, 2) NOT NULL CHECK (amount >= 0),
    currency         char(3) NOT NULL,
    gateway_reference text,
    memo             text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_bill ON ledger_entries (bill_id, id);

-- Append-only, loudly: a trigger (not a rule, which would forbid ON CONFLICT) refuses
-- every UPDATE and DELETE.
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

-- Every try at collecting a bill, as the bill's `attempts` shows it.
CREATE TABLE charge_attempts (
    id                 bigserial PRIMARY KEY,
    idempotency_key    text NOT NULL UNIQUE,
    bill_id            text NOT NULL REFERENCES bills (id),
    status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    method             text NOT NULL,
    payment_method_id  text,
    amount             numeric(20, 2) NOT NULL,
    gateway_reference  text,
    authorization_code text,
    decline_code       text,
    message            text NOT NULL DEFAULT '',
    at                 timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX charge_attempts_bill ON charge_attempts (bill_id, id);

-- Refund reservations: the saga reserves under a row lock on the bill, so two
-- racing refunds cannot both pass; a failed refund releases its reservation.
CREATE TABLE refunds (
    id               text PRIMARY KEY,
    bill_id          text NOT NULL REFERENCES bills (id),
    amount           numeric(20, 2) NOT NULL CHECK (amount > 0),
    currency         char(3) NOT NULL,
    reason           text NOT NULL,
    status           text NOT NULL CHECK (status IN ('reserved', 'succeeded', 'released')),
    workflow_id      text NOT NULL,
    gateway_reference text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_bill ON refunds (bill_id);

-- Why a saga compensated: the record a person reads after a failed upgrade.
CREATE TABLE saga_events (
    id           bigserial PRIMARY KEY,
    workflow_id  text NOT NULL,
    customer_id  text,
    bill_id      text,
    step         text NOT NULL,
    message      text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
