-- Usage in, in one round trip (issue 13): the checks, the billed-period rule and the insert
-- in one function call, its own transaction, instead of BEGIN, four statements and COMMIT.

-- What a customer's usage is limited and priced by, as one value: the API caches a plan
-- with its stamp and `record_usage` refuses a stamp that is no longer current. Every part
-- is spelled as text of its own (an empty one for NULL), so two states never share a text.
CREATE FUNCTION usage_plan_stamp(p_customer text) RETURNS text
LANGUAGE sql STABLE AS $$
SELECT md5(concat_ws('|',
    c.tier, c.status, c.auto_upgrade::text, c.currency, c.overrides::text,
    extract(epoch FROM c.started_at)::text,
    coalesce((SELECT extract(epoch FROM max(tc.effective_at))::text
              FROM tier_changes tc WHERE tc.customer_id = c.id), ''),
    coalesce((SELECT pm.id FROM payment_methods pm WHERE pm.customer_id = c.id
              ORDER BY pm.created_at DESC, pm.id DESC LIMIT 1), '')))
FROM customers c WHERE c.id = p_customer
$$;

-- Records priced usage events, once each, unless their period is billed. Events come in
-- groups that share customer, kind, period, tier and unit price (`e_group` indexes the
-- g_* arrays); the cost is quantity * unit price, exact numeric.
--
-- Answers rows (outcome, idx, events, quantity), nothing written unless stated:
--   ('unauthorized', NULL)    p_key_hash is not the key of the only customer in the call;
--   ('stale', i)              p_stamps[i] is not p_customers[i]'s current plan stamp;
--   ('inserted', g, n, q)     n events of group g inserted, q their summed quantity (groups
--                             that inserted nothing have no row: every event a duplicate);
--   ('known', e)              event e is in a billed period and already recorded (duplicate);
--   ('billed', e)             event e is new in a billed period: refused.
--
-- The bill builder's contract (store/usage.py): the shared advisory lock of every
-- (customer, period) pair first, in its own statement and in the caller's sorted order, and
-- only then the bills check, a later statement with a fresh snapshot (READ COMMITTED
-- takes one per statement in a VOLATILE function), so a bill that committed while this
-- call waited for the lock is seen.
CREATE FUNCTION record_usage(
    p_key_hash text,
    p_customers text[], p_stamps text[],
    p_lock_customers text[], p_lock_periods text[],
    g_customer text[], g_kind text[], g_period text[], g_tier text[], g_price numeric[],
    e_group int[], e_event_id text[], e_quantity bigint[], e_occurred_at timestamptz[]
) RETURNS TABLE (outcome text, idx int, events bigint, quantity bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    billed int[];
BEGIN
    IF p_key_hash IS NOT NULL AND (cardinality(p_customers) <> 1 OR NOT EXISTS (
            SELECT 1 FROM customers c
            WHERE c.id = p_customers[1] AND c.api_key_hash = p_key_hash)) THEN
        RETURN QUERY SELECT 'unauthorized'::text, NULL::int, 0::bigint, 0::bigint;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT 'stale'::text, i::int, 0::bigint, 0::bigint
        FROM generate_subscripts(p_customers, 1) AS i
        WHERE usage_plan_stamp(p_customers[i]) IS DISTINCT FROM p_stamps[i];
    IF FOUND THEN
        RETURN;
    END IF;

    PERFORM count(pg_advisory_xact_lock_shared(hashtext(t.c || ':' || t.p)))
    FROM unnest(p_lock_customers, p_lock_periods) AS t(c, p);

    SELECT array_agg(g) INTO billed
    FROM generate_subscripts(g_customer, 1) AS g
    WHERE EXISTS (SELECT 1 FROM bills b WHERE b.customer_id = g_customer[g]
                  AND b.period = g_period[g] AND b.kind = 'cycle');

    RETURN QUERY
    WITH ins AS (
        INSERT INTO usage_events
            (customer_id, event_id, kind, quantity, occurred_at, period, tier, unit_price, cost)
        SELECT g_customer[e.g], e.event_id, g_kind[e.g], e.quantity, e.occurred_at,
               g_period[e.g], g_tier[e.g], g_price[e.g], e.quantity * g_price[e.g]
        FROM unnest(e_group, e_event_id, e_quantity, e_occurred_at)
            AS e(g, event_id, quantity, occurred_at)
        WHERE billed IS NULL OR e.g <> ALL (billed)
        ON CONFLICT (customer_id, event_id) DO NOTHING
        RETURNING customer_id, kind, period, tier, usage_events.quantity
    )
    SELECT 'inserted'::text, g::int, count(*), sum(ins.quantity)::bigint
    FROM ins JOIN generate_subscripts(g_customer, 1) AS g
        ON ins.customer_id = g_customer[g] AND ins.kind = g_kind[g]
        AND ins.period = g_period[g] AND ins.tier = g_tier[g]
    GROUP BY g;

    IF billed IS NOT NULL THEN
        RETURN QUERY
        SELECT CASE WHEN EXISTS (
                   SELECT 1 FROM usage_events u
                   WHERE u.customer_id = g_customer[e.g] AND u.event_id = e.event_id)
               THEN 'known' ELSE 'billed' END,
               e.n::int, 0::bigint, 0::bigint
        FROM unnest(e_group, e_event_id) WITH ORDINALITY AS e(g, event_id, n)
        WHERE e.g = ANY (billed);
    END IF;
END
$$;
