-- matviews.swap (SPEC §4): the catalog before and after a swap. The view under the original name
-- is a new relation (a new OID) with the same indexes (names, definitions, uniqueness, methods,
-- predicates, storage options; the concurrent-refresh index included), owner, privileges (table
-- and column, grant options and grantors), comments, storage parameters, and fresh statistics.
-- Also: rebuilding gives the same data as REFRESH (computed as the view's owner), a 63-byte view
-- name, leftovers of an earlier build, and swaps that must be refused.

SET client_min_messages = warning;
-- Runs of earlier test files are not this file's concern.
SELECT coalesce(max(id), 0) AS swaptest_first_run FROM matviews.runs \gset

-- Everything about a relation that a swap must carry over, one line per item, without OIDs.
CREATE FUNCTION swaptest_snapshot(rel text) RETURNS TABLE (item text, detail text)
LANGUAGE sql AS $$
    SELECT 'relation', pg_catalog.format('kind=%s owner=%s acl=%s options=%s comment=%s populated=%s tablespace=%s',
               c.relkind, pg_get_userbyid(c.relowner), c.relacl, c.reloptions,
               obj_description(c.oid, 'pg_class'), c.relispopulated,
               (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace))
    FROM pg_class c WHERE c.oid = rel::regclass
    UNION ALL
    -- (pg_attver is set by this server build on every column, with a value of its own.)
    SELECT pg_catalog.format('column %s', a.attnum),
           pg_catalog.format('%s %s acl=%s comment=%s statistics=%s options=%s storage=%s compression=%s',
               a.attname, format_type(a.atttypid, a.atttypmod), a.attacl,
               col_description(a.attrelid, a.attnum), a.attstattarget,
               ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%'),
               a.attstorage, a.attcompression)
    FROM pg_attribute a WHERE a.attrelid = rel::regclass AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT pg_catalog.format('index %s', ic.relname),
           pg_catalog.format('%s | unique=%s valid=%s clustered=%s options=%s comment=%s tablespace=%s',
               pg_get_indexdef(i.indexrelid), i.indisunique, i.indisvalid, i.indisclustered,
               ic.reloptions, obj_description(ic.oid, 'pg_class'),
               (SELECT spcname FROM pg_tablespace WHERE oid = ic.reltablespace))
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = rel::regclass
    UNION ALL
    SELECT pg_catalog.format('trigger %s', t.tgname), pg_get_triggerdef(t.oid)
    FROM pg_trigger t WHERE t.tgrelid = rel::regclass AND NOT t.tgisinternal
    UNION ALL
    SELECT pg_catalog.format('rule %s', r.rulename), pg_get_ruledef(r.oid)
    FROM pg_rewrite r WHERE r.ev_class = rel::regclass AND r.rulename <> '_RETURN'
    UNION ALL
    SELECT 'definition', pg_get_viewdef(rel::regclass)
    ORDER BY 1
$$;

-- Lines lost and gained since a stored snapshot; no rows means identical.
CREATE FUNCTION swaptest_diff(rel text, before_rel text) RETURNS TABLE (change text, item text, detail text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE pg_catalog.format(
        '(SELECT ''lost'', b.item, b.detail FROM %1$s b
          EXCEPT SELECT ''lost'', s.item, s.detail FROM swaptest_snapshot(%2$L) s)
         UNION ALL
         (SELECT ''gained'', s.item, s.detail FROM swaptest_snapshot(%2$L) s
          EXCEPT SELECT ''gained'', b.item, b.detail FROM %1$s b)
         ORDER BY 2, 1', before_rel, rel);
END $$;

-- The fields of a swap response that do not change from run to run.
CREATE FUNCTION swaptest_summary(r jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'status', r->'status', 'operation', r->'operation', 'view', r->'view',
        'indexes', r->'response'->'indexes',
        'dependents_recreated', r->'response'->'dependents_recreated',
        'lock_attempts', r->'response'->'lock_attempts',
        'definition_updated', r->'response'->'definition_updated',
        'removed_leftover', r->'response'->'removed_leftover',
        'row_count_before', r->'response'->'row_count_before',
        'row_count_after', r->'response'->'row_count_after',
        'error', r->'error'))
$$;

CREATE ROLE mvtest_swap_owner;
CREATE ROLE mvtest_swap_reader;
CREATE ROLE mvtest_swap_col;
CREATE ROLE mvtest_swap_sub;
GRANT CREATE ON SCHEMA public TO mvtest_swap_owner;

CREATE TABLE swap_src (id int PRIMARY KEY, grp int, name text, amount numeric);
INSERT INTO swap_src SELECT g, g % 5, 'n' || g, g * 1.5 FROM generate_series(1, 200) g;
GRANT SELECT ON swap_src TO mvtest_swap_owner;

SELECT r->>'status' AS status, r->'response'->>'index' AS index
FROM matviews.create('swap_mv', 'SELECT id, grp, name, amount FROM swap_src',
                     refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id']) r;

-- Indexes of every shape the catalog capture must rebuild.
CREATE INDEX swap_mv_grp_idx ON swap_mv (grp DESC NULLS LAST) WITH (fillfactor = 70);
CREATE UNIQUE INDEX swap_mv_name_key ON swap_mv (name) INCLUDE (amount);
CREATE INDEX swap_mv_lower_idx ON swap_mv (lower(name) text_pattern_ops) WHERE amount > 10;
SET allow_in_place_tablespaces = true;
CREATE TABLESPACE swap_ts LOCATION '';
RESET allow_in_place_tablespaces;
CREATE INDEX swap_mv_hash_idx ON swap_mv USING hash (grp) TABLESPACE swap_ts;
CREATE INDEX "swap_mv Mixed ""idx""" ON swap_mv (name COLLATE "C" NULLS FIRST);
CREATE UNIQUE INDEX swap_mv_nnd_key ON swap_mv (grp, id) NULLS NOT DISTINCT;
CREATE INDEX swap_mv_brin_idx ON swap_mv USING brin (id) WITH (pages_per_range = 32);
CREATE INDEX swap_mv_expr_idx ON swap_mv ((amount * 2), (grp + 1));
COMMENT ON INDEX swap_mv_grp_idx IS 'by group';
ALTER MATERIALIZED VIEW swap_mv CLUSTER ON swap_mv_grp_idx;

-- Storage: tablespace, storage parameters, per-column statistics target, n_distinct, storage and
-- compression. Owner, privileges (table, column, grant option, a grant made by a grantee
-- holding the grant option, PUBLIC) and comments.
ALTER MATERIALIZED VIEW swap_mv SET TABLESPACE swap_ts;
ALTER MATERIALIZED VIEW swap_mv SET (fillfactor = 80, autovacuum_enabled = false);
ALTER MATERIALIZED VIEW swap_mv ALTER COLUMN grp SET STATISTICS 500;
ALTER MATERIALIZED VIEW swap_mv ALTER COLUMN grp SET (n_distinct = 5);
ALTER MATERIALIZED VIEW swap_mv ALTER COLUMN name SET STORAGE EXTERNAL;
ALTER MATERIALIZED VIEW swap_mv ALTER COLUMN name SET COMPRESSION pglz;
ALTER MATERIALIZED VIEW swap_mv OWNER TO mvtest_swap_owner;
GRANT SELECT ON swap_mv TO mvtest_swap_reader WITH GRANT OPTION;
GRANT SELECT (id, name) ON swap_mv TO mvtest_swap_col;
GRANT REFERENCES (grp) ON swap_mv TO mvtest_swap_col WITH GRANT OPTION;
GRANT SELECT ON swap_mv TO PUBLIC;
REVOKE TRUNCATE ON swap_mv FROM mvtest_swap_owner;
SET ROLE mvtest_swap_reader;
GRANT SELECT ON swap_mv TO mvtest_swap_sub;
RESET ROLE;
COMMENT ON MATERIALIZED VIEW swap_mv IS 'swapped view';
COMMENT ON COLUMN swap_mv.amount IS 'money, in euros';
COMMENT ON COLUMN swap_mv.name IS 'display name';

CREATE TEMP TABLE swap_before AS SELECT * FROM swaptest_snapshot('swap_mv');
CREATE TEMP TABLE swap_before_oid AS SELECT 'swap_mv'::regclass::oid AS oid;
SELECT * FROM swap_before;

-- New rows arrive; the swap rebuilds from the stored definition.
INSERT INTO swap_src SELECT g, g % 5, 'n' || g, g * 1.5 FROM generate_series(201, 250) g;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_mv', row_count_strategy => 'exact') r;

-- The statements it ran, in order (temporary names included).
SELECT s AS statement
FROM matviews.runs r, jsonb_array_elements_text(r.meta->'response'->'sql') s
WHERE r.id = (SELECT max(id) FROM matviews.runs WHERE operation = 'swap');

-- A new relation under the same name, with nothing lost and nothing gained.
SELECT 'swap_mv'::regclass::oid <> (SELECT oid FROM swap_before_oid) AS new_relation;
SELECT * FROM swaptest_diff('swap_mv', 'swap_before');
SELECT count(*) AS rows, sum(amount) AS total FROM swap_mv;
SELECT count(*) AS temporary_relations FROM pg_class WHERE relname LIKE '%mvswap%';

-- Fresh planner statistics.
SELECT reltuples AS reltuples FROM pg_class WHERE oid = 'swap_mv'::regclass;
SELECT count(*) > 0 AS has_column_statistics FROM pg_stats
WHERE schemaname = 'public' AND tablename = 'swap_mv';

-- The concurrent-refresh index still does its job.
INSERT INTO swap_src VALUES (251, 1, 'n251', 1);
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy
FROM matviews.refresh('swap_mv') r;
SELECT count(*) AS rows FROM swap_mv;

-- The privileges work, as before: the reader reads, the column grantee reads its columns only.
SET ROLE mvtest_swap_reader;
SELECT count(*) AS reader_rows FROM swap_mv;
RESET ROLE;
SET ROLE mvtest_swap_sub;
SELECT count(*) AS sub_rows FROM swap_mv;
RESET ROLE;
REVOKE SELECT ON swap_mv FROM PUBLIC;
SET ROLE mvtest_swap_col;
SELECT id, name FROM swap_mv WHERE id = 1;
SELECT amount FROM swap_mv WHERE id = 1;
RESET ROLE;
GRANT SELECT ON swap_mv TO PUBLIC;

-- The grantor chain survived: revoking the reader's grant option cascades to what it granted.
REVOKE GRANT OPTION FOR SELECT ON swap_mv FROM mvtest_swap_reader CASCADE;
SELECT a.grantee::regrole AS grantee, a.grantor::regrole AS grantor, a.privilege_type, a.is_grantable
FROM pg_class c, aclexplode(c.relacl) a
WHERE c.oid = 'swap_mv'::regclass AND a.grantee <> 0 AND a.grantee <> c.relowner
ORDER BY 1, 3;
GRANT SELECT ON swap_mv TO mvtest_swap_reader WITH GRANT OPTION;

-- Rebuilding gives the same data as REFRESH, which computes the view as its owner: a query that
-- reads current_user gives the owner, whoever calls the swap.
SELECT r->>'status' AS status
FROM matviews.create('swap_who', 'SELECT current_user::text AS who, count(*) AS n FROM swap_src') r;
ALTER MATERIALIZED VIEW swap_who OWNER TO mvtest_swap_owner;
REFRESH MATERIALIZED VIEW swap_who;
SELECT who AS after_refresh FROM swap_who;
SELECT r->>'status' AS status FROM matviews.swap('swap_who') r;
SELECT who AS after_swap FROM swap_who;
SELECT r->>'status' AS status FROM matviews.refresh('swap_who', strategy => 'swap') r;
SELECT who AS after_refresh_swap FROM swap_who;
SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'swap_who'::regclass;

-- A view that was never populated is built populated.
CREATE MATERIALIZED VIEW swap_empty AS SELECT id FROM swap_src WITH NO DATA;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_empty', row_count_strategy => 'exact') r;
SELECT relispopulated AS populated FROM pg_class WHERE oid = 'swap_empty'::regclass;
DROP MATERIALIZED VIEW swap_empty;

-- A 63-byte view name: every temporary name (view and indexes) fits in 63 bytes.
SELECT r->>'status' AS status, r->'response'->>'index' AS index
FROM matviews.create('swap_long_name_' || repeat('x', 48), 'SELECT id, name FROM swap_src',
                     refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id', 'name']) r;
SELECT length(relname) AS name_bytes FROM pg_class WHERE relname = 'swap_long_name_' || repeat('x', 48);
CREATE INDEX ON swap_long_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx (name);
COMMENT ON MATERIALIZED VIEW swap_long_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx IS 'long';
CREATE TEMP TABLE swap_long_before AS
    SELECT * FROM swaptest_snapshot('swap_long_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx');
SELECT swaptest_summary(r) AS swap
FROM matviews.swap('swap_long_name_' || repeat('x', 48), row_count_strategy => 'exact') r;
SELECT s AS statement
FROM matviews.runs r, jsonb_array_elements_text(r.meta->'response'->'sql') s
WHERE r.id = (SELECT max(id) FROM matviews.runs WHERE operation = 'swap')
  AND s ~ '^(CREATE|ALTER INDEX|ALTER MATERIALIZED VIEW .* RENAME)';
SELECT * FROM swaptest_diff('swap_long_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
                            'swap_long_before');
SELECT r->>'status' AS status FROM matviews.refresh('swap_long_name_' || repeat('x', 48)) r;

-- A leftover of an earlier build (marked as such) is dropped by the next swap; a relation of the
-- same name that matviews did not make is never touched: the swap builds under the next free
-- name (<view>_mvswap2), so taking the name cannot stop a view's swaps.
CREATE MATERIALIZED VIEW swap_who_mvswap AS SELECT 1 AS x;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_who') r;
SELECT to_regclass('swap_who_mvswap') AS still_there;
COMMENT ON MATERIALIZED VIEW swap_who_mvswap IS 'matviews: swap build of public.swap_who';
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_who') r;
SELECT to_regclass('swap_who_mvswap') AS leftover;
SELECT who FROM swap_who;

-- Refusals: not a materialized view, missing, not the owner (a dependent that is not a view is
-- in swap_dependents.sql).
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_src') r;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_missing') r;
SET ROLE mvtest_swap_reader;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_mv') r;
RESET ROLE;
SELECT 'swap_mv'::regclass::oid <> (SELECT oid FROM swap_before_oid) AS still_the_swapped_relation;

-- The runs: every swap recorded, failures with their SQLSTATE.
SELECT view, operation, strategy, status, error->>'sqlstate' AS sqlstate
FROM matviews.runs WHERE (operation = 'swap' OR strategy = 'swap') AND id > :swaptest_first_run ORDER BY id;

-- Clean up.
SELECT r->>'status' AS status FROM matviews.delete('swap_who') r;
SELECT r->>'status' AS status FROM matviews.delete('swap_long_name_' || repeat('x', 48)) r;
SELECT r->>'status' AS status FROM matviews.delete('swap_mv') r;
DROP TABLESPACE swap_ts;
