-- Outbound events (issue 14): a transactional outbox and the seller's webhook endpoints.
-- An event row is inserted in the same transaction as the change it describes, so it
-- exists if and only if that change committed; delivery reads it afterwards.

-- The last sequence number handed out per customer ('' for events of no customer). Taken
-- with INSERT ... ON CONFLICT DO UPDATE inside the emitting transaction: the row lock
-- orders concurrent emitters of one customer, and a rollback gives the number back, so a
-- customer's sequence has no gap.
CREATE TABLE customer_event_sequences (
    customer_id text PRIMARY KEY,
    last        bigint NOT NULL CHECK (last > 0)
);

CREATE TABLE events (
    id            text PRIMARY KEY CHECK (id LIKE 'evt\_%'),
    -- Commit order is not insert order; `position` only pages and orders the outbox.
    position      bigint GENERATED ALWAYS AS IDENTITY,
    type          text NOT NULL,
    customer_id   text REFERENCES customers (id),
    sequence      bigint NOT NULL CHECK (sequence > 0),
    data          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Set when the dispatcher has started a delivery for every subscribed endpoint.
    dispatched_at timestamptz,
    CONSTRAINT events_position_key UNIQUE (position),
    CONSTRAINT events_one_sequence_per_customer UNIQUE NULLS NOT DISTINCT (customer_id, sequence)
);
CREATE INDEX events_undispatched ON events (position) WHERE dispatched_at IS NULL;
CREATE INDEX events_by_type ON events (type, position);
CREATE INDEX events_by_customer ON events (customer_id, position);

CREATE TABLE webhook_endpoints (
    id                         text PRIMARY KEY CHECK (id LIKE 'we\_%'),
    url                        text NOT NULL CHECK (url ~ '^https?://'),
    description                text NOT NULL DEFAULT '',
    events                     text[] NOT NULL DEFAULT '{}',  -- empty: every type
    enabled                    boolean NOT NULL DEFAULT true,
    disabled_reason            text,
    -- The signing secret as `whsec_<base64>`. Signing needs it in clear, so it cannot be
    -- hashed like a customer key; in production it should be encrypted at rest (a KMS
    -- or the payload codec key), which this schema leaves to the deployment.
    secret                     text NOT NULL,
    -- After a rotation the previous secret signs too until it expires (the overlap).
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

-- Where each event stands with each endpoint it was dispatched to.
CREATE TABLE webhook_delivery_states (
    event_id         text NOT NULL REFERENCES events (id),
    endpoint_id      text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    workflow_id      text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_status_code integer,
    next_try_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_delivery_states_by_endpoint
    ON webhook_delivery_states (endpoint_id, created_at DESC);

-- Every attempt, as GET /v1/webhook-endpoints/{id}/deliveries shows it. An attempt that
-- Temporal retries (the worker died mid-request) overwrites its own row.
CREATE TABLE webhook_deliveries (
    id          text PRIMARY KEY,
    event_id    text NOT NULL REFERENCES events (id),
    endpoint_id text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    workflow_id text NOT NULL,
    attempt     integer NOT NULL CHECK (attempt > 0),
    status_code integer,
    latency_ms  integer CHECK (latency_ms >= 0),
    error       text,
    next_try_at timestamptz,
    delivered   boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_one_row_per_attempt UNIQUE (workflow_id, attempt)
);
CREATE INDEX webhook_deliveries_by_endpoint
    ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
