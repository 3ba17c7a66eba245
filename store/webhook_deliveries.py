"""The dispatcher's and the delivery attempts' SQL: outbox claims, attempt log, disabling."""

from __future__ import annotations

# The oldest undispatched events, locked so that a second dispatcher skips them.
CLAIM_EVENTS = """
SELECT id, type, customer_id FROM events
WHERE dispatched_at IS NULL
ORDER BY position
LIMIT $1::int
FOR UPDATE SKIP LOCKED"""

# Each claimed event with every endpoint that takes it: enabled, subscribed to its type,
# and existing when the event was made (an endpoint does not receive the past).
TARGETS = """
SELECT e.id AS event_id, e.type, e.customer_id, w.id AS endpoint_id
FROM events e
JOIN webhook_endpoints w
  ON w.enabled
 AND (cardinality(w.events) = 0 OR e.type = ANY(w.events))
 AND w.created_at <= e.created_at
WHERE e.id = ANY($1::text[])
ORDER BY e.position, w.id"""

INSERT_STATES = """
INSERT INTO webhook_delivery_states (event_id, endpoint_id, workflow_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT (event_id, endpoint_id) DO NOTHING"""

MARK_DISPATCHED = "UPDATE events SET dispatched_at = now() WHERE id = ANY($1::text[])"

# What one attempt needs, read afresh each time: a rotation, a disabling or a deletion
# between attempts is honoured by the next one.
ATTEMPT_CONTEXT = """
SELECT e.id, e.type, e.customer_id, e.sequence, e.data::text AS data, e.created_at,
       w.url, w.enabled, w.secret, w.previous_secret, w.previous_secret_expires_at,
       now() AS now
FROM events e JOIN webhook_endpoints w ON w.id = $2::text
WHERE e.id = $1::text"""

LOG_ATTEMPT = """
INSERT INTO webhook_deliveries (id, event_id, endpoint_id, workflow_id, attempt, status_code,
                                latency_ms, error, next_try_at, delivered)
VALUES ($1::text, $2::text, $3::text, $4::text, $5::int, $6::int, $7::int, $8::text,
        CASE WHEN $9::interval IS NULL THEN NULL ELSE now() + $9::interval END, $10::boolean)
ON CONFLICT (workflow_id, attempt) DO UPDATE SET
    status_code = EXCLUDED.status_code, latency_ms = EXCLUDED.latency_ms,
    error = EXCLUDED.error, next_try_at = EXCLUDED.next_try_at,
    delivered = EXCLUDED.delivered, created_at = now()"""

# A redelivery of an event the dispatcher never sent to this endpoint makes its row here.
RECORD_STATE = """
INSERT INTO webhook_delivery_states AS s (event_id, endpoint_id, workflow_id, status, attempts,
                                          last_status_code, next_try_at)
VALUES ($1::text, $2::text, $3::text, $4::text, 1, $5::int,
        CASE WHEN $6::interval IS NULL THEN NULL ELSE now() + $6::interval END)
ON CONFLICT (event_id, endpoint_id) DO UPDATE SET
    workflow_id = EXCLUDED.workflow_id,
    -- A delivered event stays delivered, whatever a later redelivery meets.
    status = CASE WHEN s.status = 'delivered' THEN s.status ELSE EXCLUDED.status END,
    attempts = s.attempts + 1,
    last_status_code = EXCLUDED.last_status_code,
    next_try_at = EXCLUDED.next_try_at,
    updated_at = now()"""

SET_STATE = """
UPDATE webhook_delivery_states SET status = $3::text, next_try_at = NULL, updated_at = now()
WHERE event_id = $1::text AND endpoint_id = $2::text AND status <> 'delivered'"""

# Disabled only if nothing reached it since the failed delivery began: an endpoint that
# answers some events is flaky, not dead. Only the first disabling returns a row.
DISABLE_IF_DEAD = """
UPDATE webhook_endpoints w SET
    enabled = false,
    disabled_reason = $3::text,
    updated_at = now()
WHERE w.id = $1::text AND w.enabled
  AND NOT EXISTS (
      SELECT 1 FROM webhook_deliveries d
      WHERE d.endpoint_id = w.id AND d.delivered AND d.created_at >= $2::timestamptz)
RETURNING w.id, w.url, w.description, w.events, w.disabled_reason, w.updated_at"""

# Deliveries of a disabled endpoint that are still waiting are over.
CANCEL_PENDING = """
UPDATE webhook_delivery_states SET status = 'cancelled', next_try_at = NULL, updated_at = now()
WHERE endpoint_id = $1::text AND status = 'pending'"""
