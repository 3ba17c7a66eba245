-- usage.limit_warning and usage.limit_reached go out once per customer, hour window and
-- kind: the first request to cross the line inserts the notice and its event together.
CREATE TABLE usage_limit_notices (
    customer_id  text NOT NULL REFERENCES customers (id),
    window_start timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('usage.limit_warning', 'usage.limit_reached')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, window_start, kind)
);
