-- record_usage's event columns as comma-separated text (issue 13), not arrays.
--
-- asyncpg checks every element of an array parameter against collections.abc.Iterable
-- (a Python-level isinstance) before encoding it: for a thousand-event batch that was about
-- 0.6 us of the API's CPU an event across the event_id, group and quantity arrays, measured
-- as 432 against 123 us of client CPU for a thousand ids sent as text[] or as one text.
-- Postgres splits the text in C. No separator can be ambiguous: an event_id is
-- [A-Za-z0-9_.:-]+ (the API refuses any other), groups and quantities are integers, and a
-- call whose columns do not line up raises instead of inserting.
DROP FUNCTION record_usage(text, text[], text[], text[], text[], text[], text[], text[],
                           text[], numeric[], int[], text[], bigint[], float8[]);

-- Answers as in 0007.
CREATE FUNCTION record_usage(
    p_key_hash text,
    p_customers text[], p_stamps text[],
    p_lock_customers text[], p_lock_periods text[],
    g_customer text[], g_kind text[], g_period text[], g_tier text[], g_price numeric[],
    p_groups text, p_event_ids text, p_quantities text, e_at float8[]
) RETURNS TABLE (outcome text, idx int, events bigint, quantity bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    e_group int[] := string_to_array(p_groups, ',')::int[];
    e_event_id text[] := string_to_array(p_event_ids, ',');
    e_quantity bigint[] := string_to_array(p_quantities, ',')::bigint[];
    billed int[];
    n bigint;
BEGIN
    IF cardinality(e_event_id) <> cardinality(e_group)
            OR cardinality(e_quantity) <> cardinality(e_group)
            OR cardinality(e_at) <> cardinality(e_group) THEN
        RAISE EXCEPTION 'record_usage: % groups, % event ids, % quantities, % moments',
            cardinality(e_group), cardinality(e_event_id), cardinality(e_quantity),
            cardinality(e_at);
    END IF;
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
