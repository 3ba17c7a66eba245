-- record_usage, cheaper for Postgres (issue 13): a plain INSERT first, ON CONFLICT only when
-- a known event_id is in the call; occurred_at as float8 seconds since the epoch.
--
-- ON CONFLICT DO NOTHING inserts each row speculatively (index check, insert, confirm):
-- about a fifth of the insert's CPU for a thousand rows. Nearly every call carries only new
-- events, so the rows go in with a plain INSERT inside a block that catches
-- unique_violation; a call with a known event_id (a retried batch, a race with another
-- request carrying the same id) rolls that block back and takes the ON CONFLICT path, which
-- answers per group. The locks and the bills check stay outside the block, in the order
-- migration 0006 describes.
--
-- to_timestamp(float8) rounds to the microsecond: exact for every moment before 2255, and
-- the API refuses occurred_at more than five minutes ahead.
DROP FUNCTION record_usage(text, text[], text[], text[], text[], text[], text[], text[],
                           text[], numeric[], int[], text[], bigint[], timestamptz[]);

-- Answers as in 0006, plus ('all', NULL, n): every event of the call was inserted (n).
CREATE FUNCTION record_usage(
    p_key_hash text,
    p_customers text[], p_stamps text[],
    p_lock_customers text[], p_lock_periods text[],
    g_customer text[], g_kind text[], g_period text[], g_tier text[], g_price numeric[],
    e_group int[], e_event_id text[], e_quantity bigint[], e_at float8[]
) RETURNS TABLE (outcome text, idx int, events bigint, quantity bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    billed int[];
    n bigint;
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

    IF billed IS NULL THEN
        BEGIN
            INSERT INTO usage_events (customer_id, event_id, kind, quantity, occurred_at,
                                      period, tier, unit_price, cost)
            SELECT g_customer[e.g], e.event_id, g_kind[e.g], e.quantity, to_timestamp(e.at),
                   g_period[e.g], g_tier[e.g], g_price[e.g], e.quantity * g_price[e.g]
            FROM unnest(e_group, e_event_id, e_quantity, e_at) AS e(g, event_id, quantity, at);
            GET DIAGNOSTICS n = ROW_COUNT;
            RETURN QUERY SELECT 'all'::text, NULL::int, n, 0::bigint;
            RETURN;
        EXCEPTION WHEN unique_violation THEN
            NULL;  -- a known event_id: every row of the block is undone; answer per group
        END;
    END IF;

    RETURN QUERY
    WITH ins AS (
        INSERT INTO usage_events
            (customer_id, event_id, kind, quantity, occurred_at, period, tier, unit_price, cost)
        SELECT g_customer[e.g], e.event_id, g_kind[e.g], e.quantity, to_timestamp(e.at),
               g_period[e.g], g_tier[e.g], g_price[e.g], e.quantity * g_price[e.g]
        FROM unnest(e_group, e_event_id, e_quantity, e_at) AS e(g, event_id, quantity, at)
        WHERE billed IS NULL OR e.g <> ALL (billed)
        ON CONFLICT (customer_id, event_id) DO NOTHING
        RETURNING customer_id, kind, period, tier, usage_events.quantity
    ), per_group AS (
        SELECT ins.customer_id, ins.kind, ins.period, ins.tier,
               count(*) AS n, sum(ins.quantity)::bigint AS q
        FROM ins GROUP BY 1, 2, 3, 4
    )
    SELECT 'inserted'::text, g::int, per_group.n, per_group.q
    FROM per_group JOIN generate_subscripts(g_customer, 1) AS g
        ON per_group.customer_id = g_customer[g] AND per_group.kind = g_kind[g]
        AND per_group.period = g_period[g] AND per_group.tier = g_tier[g];

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
