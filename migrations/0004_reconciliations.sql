-- Reconciliation reports (issue 12): what the gateway held, what the ledger lacked and
-- recorded, and what nobody can tie to a bill. One row per run, written at its start,
-- after each page and at its end.
CREATE TABLE reconciliations (
    id           text PRIMARY KEY,
    workflow_id  text NOT NULL UNIQUE,
    since        timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('running', 'completed')),
    checked      integer NOT NULL DEFAULT 0 CHECK (checked >= 0),
    matched      integer NOT NULL DEFAULT 0 CHECK (matched >= 0),
    fixed        jsonb NOT NULL DEFAULT '[]'::jsonb,
    unresolved   jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX reconciliations_created ON reconciliations (created_at DESC);
