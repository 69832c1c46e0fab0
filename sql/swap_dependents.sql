-- matviews.swap and the relations that depend on the view (SPEC §4): views two levels deep and a
-- materialized view all depend on the new relation afterwards, still work, and keep their owner,
-- grants, comments, options, indexes, triggers and rules; the dependent materialized view is
-- repopulated. A redefinition adds columns; a redefinition that a dependent cannot follow, and a
-- dependent that is not a view, refuse the swap and leave everything as it was.
-- Uses swaptest_snapshot, swaptest_diff and swaptest_summary from swap.sql.

SET client_min_messages = warning;

CREATE ROLE mvtest_dep_owner;
CREATE ROLE mvtest_dep_reader;
CREATE SCHEMA swap_dep_other;
GRANT USAGE, CREATE ON SCHEMA swap_dep_other TO mvtest_dep_owner;
GRANT USAGE ON SCHEMA swap_dep_other TO mvtest_dep_reader;

CREATE TABLE swap_dep_src (id int PRIMARY KEY, grp int, amount numeric);
INSERT INTO swap_dep_src SELECT g, g % 4, g FROM generate_series(1, 100) g;
GRANT SELECT ON swap_dep_src TO mvtest_dep_owner;

SELECT r->>'status' AS status
FROM matviews.create('swap_dep_mv', 'SELECT id, grp, amount FROM swap_dep_src',
                     refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id']) r;
GRANT SELECT ON swap_dep_mv TO mvtest_dep_owner;

-- Level 1: a view on the view, owned by another role, with a column list, options and comments.
CREATE VIEW swap_dep_v1 (id, grp, amount) WITH (security_barrier = true) AS
    SELECT id, grp, amount FROM swap_dep_mv WHERE grp < 3;
ALTER VIEW swap_dep_v1 OWNER TO mvtest_dep_owner;
GRANT SELECT ON swap_dep_v1 TO mvtest_dep_reader;
COMMENT ON VIEW swap_dep_v1 IS 'level one';
COMMENT ON COLUMN swap_dep_v1.amount IS 'amount of level one';

-- Level 2: a view on the view on the view, in another schema, with column grants, a rule and an
-- INSTEAD OF trigger.
CREATE VIEW swap_dep_other.v2 AS SELECT grp, sum(amount) AS total, count(*) AS n
    FROM swap_dep_v1 GROUP BY grp;
GRANT SELECT (grp, total) ON swap_dep_other.v2 TO mvtest_dep_reader;
COMMENT ON VIEW swap_dep_other.v2 IS 'level two';
CREATE TABLE swap_dep_log (grp int);
CREATE RULE v2_delete AS ON DELETE TO swap_dep_other.v2 DO INSTEAD INSERT INTO swap_dep_log VALUES (OLD.grp);
CREATE FUNCTION swap_dep_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO swap_dep_log VALUES (-NEW.grp); RETURN NEW; END $$;
CREATE TRIGGER v2_insert INSTEAD OF INSERT ON swap_dep_other.v2 FOR EACH ROW EXECUTE FUNCTION swap_dep_trg();

-- A materialized view on level 1, with its own index (clustered on), comment, owner, grant and
-- column statistics target.
CREATE MATERIALIZED VIEW swap_dep_mv2 AS SELECT grp, count(*) AS n, sum(amount) AS total
    FROM swap_dep_v1 GROUP BY grp;
CREATE UNIQUE INDEX swap_dep_mv2_grp_key ON swap_dep_mv2 (grp);
COMMENT ON INDEX swap_dep_mv2_grp_key IS 'one row per group';
ALTER MATERIALIZED VIEW swap_dep_mv2 CLUSTER ON swap_dep_mv2_grp_key;
ALTER MATERIALIZED VIEW swap_dep_mv2 ALTER COLUMN total SET STATISTICS 200;
COMMENT ON MATERIALIZED VIEW swap_dep_mv2 IS 'totals';
ALTER MATERIALIZED VIEW swap_dep_mv2 OWNER TO mvtest_dep_owner;
GRANT SELECT ON swap_dep_mv2 TO mvtest_dep_reader;
-- A view on that materialized view (a dependent of a dependent).
CREATE VIEW swap_dep_v3 AS SELECT grp, n FROM swap_dep_mv2 WHERE n > 0;

CREATE TEMP TABLE dep_before AS
    SELECT r AS rel, s.* FROM unnest(ARRAY['swap_dep_mv', 'swap_dep_v1', 'swap_dep_other.v2',
                                           'swap_dep_mv2', 'swap_dep_v3']) r,
                              swaptest_snapshot(r) s;
-- What the dependents carry (their definitions aside), compared after each swap below.
SELECT rel, item, detail FROM dep_before WHERE rel <> 'swap_dep_mv' AND item <> 'definition' ORDER BY 1, 2;
CREATE TEMP TABLE dep_before_oid AS
    SELECT r AS rel, r::regclass::oid AS oid
    FROM unnest(ARRAY['swap_dep_mv', 'swap_dep_v1', 'swap_dep_other.v2', 'swap_dep_mv2', 'swap_dep_v3']) r;
CREATE FUNCTION swaptest_dep_diff() RETURNS TABLE (rel text, change text, item text, detail text)
LANGUAGE sql AS $$
    (SELECT b.rel, 'lost', b.item, b.detail FROM dep_before b
     EXCEPT SELECT o.rel, 'lost', s.item, s.detail FROM dep_before_oid o, swaptest_snapshot(o.rel) s)
    UNION ALL
    (SELECT o.rel, 'gained', s.item, s.detail FROM dep_before_oid o, swaptest_snapshot(o.rel) s
     EXCEPT SELECT b.rel, 'gained', b.item, b.detail FROM dep_before b)
    ORDER BY 1, 3, 2
$$;
CREATE FUNCTION swaptest_dep_data() RETURNS TABLE (v1_rows bigint, v2 text, mv2 text, v3_rows bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM swap_dep_v1),
           (SELECT string_agg(grp || ':' || total || ':' || n, ' ' ORDER BY grp) FROM swap_dep_other.v2),
           (SELECT string_agg(grp || ':' || total || ':' || n, ' ' ORDER BY grp) FROM swap_dep_mv2),
           (SELECT count(*) FROM swap_dep_v3)
$$;
SELECT * FROM swaptest_dep_data();

-- New data; a swap rebuilds the view and re-creates every dependent, in dependency order.
INSERT INTO swap_dep_src SELECT g, g % 4, g FROM generate_series(101, 120) g;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_dep_mv', row_count_strategy => 'exact') r;

-- Every dependent is a new relation, with nothing lost or gained, and they all work; the
-- materialized view on level 1 was repopulated with the new data.
SELECT rel, rel::regclass::oid <> oid AS new_relation FROM dep_before_oid ORDER BY rel;
SELECT * FROM swaptest_dep_diff();
SELECT * FROM swaptest_dep_data();
SELECT pg_get_viewdef('swap_dep_v1'::regclass) AS v1_definition;

-- The grants, the rule and the trigger of the dependents still work.
SET ROLE mvtest_dep_reader;
SELECT count(*) AS reader_v1 FROM swap_dep_v1;
SELECT grp, total FROM swap_dep_other.v2 WHERE grp = 1;
SELECT n FROM swap_dep_other.v2 WHERE grp = 1;
SELECT count(*) AS reader_mv2 FROM swap_dep_mv2;
RESET ROLE;
DELETE FROM swap_dep_other.v2 WHERE grp = 2;
INSERT INTO swap_dep_other.v2 VALUES (3, 0, 0);
SELECT grp FROM swap_dep_log ORDER BY grp;

-- refresh(strategy => 'swap') re-creates the dependents too.
INSERT INTO swap_dep_src VALUES (121, 1, 1000);
SELECT swaptest_summary(r) AS refresh FROM matviews.refresh('swap_dep_mv', strategy => 'swap') r;
SELECT * FROM swaptest_dep_diff();
SELECT * FROM swaptest_dep_data();

-- A redefinition with new columns: the definition is updated, indexes, grants and comments kept,
-- dependents re-created on the new relation.
COMMENT ON COLUMN swap_dep_mv.amount IS 'amount';
GRANT SELECT (amount) ON swap_dep_mv TO mvtest_dep_reader;
CREATE TEMP TABLE redef_before AS SELECT * FROM swaptest_snapshot('swap_dep_mv');
SELECT swaptest_summary(r) AS swap
FROM matviews.swap('swap_dep_mv', sql => 'SELECT id, grp, amount, amount * 2 AS doubled, ''new''::text AS tag FROM swap_dep_src',
                   row_count_strategy => 'exact') r;
SELECT * FROM swaptest_diff('swap_dep_mv', 'redef_before');
SELECT sql FROM matviews.definitions WHERE view_name = 'swap_dep_mv';
SELECT id, doubled, tag FROM swap_dep_mv WHERE id = 7;
SELECT * FROM swaptest_dep_diff() WHERE rel <> 'swap_dep_mv';
SELECT * FROM swaptest_dep_data();
-- The next plain swap rebuilds from the new definition.
SELECT r->>'status' AS status FROM matviews.swap('swap_dep_mv') r;
SELECT count(*) AS with_tag FROM swap_dep_mv WHERE tag = 'new';

-- A redefinition that drops a column a dependent uses is refused, with the dependent named;
-- nothing changes (same relations, same definition).
CREATE TEMP TABLE refused_oids AS SELECT rel, rel::regclass::oid AS oid FROM dep_before_oid;
SELECT swaptest_summary(r) AS swap
FROM matviews.swap('swap_dep_mv', sql => 'SELECT id, grp FROM swap_dep_src') r;
SELECT count(*) AS unchanged_relations FROM refused_oids WHERE rel::regclass::oid = oid;
SELECT sql FROM matviews.definitions WHERE view_name = 'swap_dep_mv';
SELECT count(*) AS temporary_relations FROM pg_class WHERE relname LIKE '%mvswap%';

-- A redefinition that an index cannot follow is refused too.
CREATE INDEX swap_dep_mv_tag_idx ON swap_dep_mv (tag);
SELECT swaptest_summary(r) AS swap
FROM matviews.swap('swap_dep_mv', sql => 'SELECT id, grp, amount, amount * 2 AS doubled FROM swap_dep_src') r;
DROP INDEX swap_dep_mv_tag_idx;

-- A column a redefinition removes loses its column privileges and comment with it; the swap
-- goes through.
CREATE MATERIALIZED VIEW swap_dep_cols AS SELECT id, grp, amount FROM swap_dep_src;
GRANT SELECT (id, amount) ON swap_dep_cols TO mvtest_dep_reader;
COMMENT ON COLUMN swap_dep_cols.amount IS 'goes away';
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_dep_cols', sql => 'SELECT id, grp FROM swap_dep_src') r;
SELECT * FROM swaptest_snapshot('swap_dep_cols') WHERE item LIKE 'column%' OR item = 'relation';
DROP MATERIALIZED VIEW swap_dep_cols;

-- A dependent that is not a view (a rule on a table reading the view) refuses the swap.
CREATE TABLE swap_dep_ruled (grp int);
CREATE RULE ruled_insert AS ON INSERT TO swap_dep_ruled DO ALSO
    SELECT count(*) FROM swap_dep_mv WHERE grp = NEW.grp;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_dep_mv') r;
DROP TABLE swap_dep_ruled;

-- A caller who owns the view but may not act for the owner of a dependent is refused before
-- anything is built (no lock attempt), as plain SQL could not drop that dependent either.
CREATE ROLE mvtest_dep_swapper;
GRANT CREATE ON SCHEMA public TO mvtest_dep_swapper;
GRANT SELECT ON swap_dep_src TO mvtest_dep_swapper;
SET ROLE mvtest_dep_swapper;
CREATE MATERIALIZED VIEW swap_dep_own AS SELECT id FROM swap_dep_src;
GRANT SELECT ON swap_dep_own TO mvtest_dep_owner;
RESET ROLE;
CREATE VIEW swap_dep_own_v AS SELECT id FROM swap_dep_own;
ALTER VIEW swap_dep_own_v OWNER TO mvtest_dep_owner;
SET ROLE mvtest_dep_swapper;
SELECT swaptest_summary(r) AS swap FROM matviews.swap('swap_dep_own') r;
RESET ROLE;
SELECT swaptest_summary(r) AS swap_as_superuser FROM matviews.swap('swap_dep_own') r;
SELECT pg_get_userbyid(relowner) AS view_owner FROM pg_class WHERE oid = 'swap_dep_own_v'::regclass;
DROP MATERIALIZED VIEW swap_dep_own CASCADE;
REVOKE CREATE ON SCHEMA public FROM mvtest_dep_swapper;
REVOKE SELECT ON swap_dep_src FROM mvtest_dep_swapper;

-- Dependents are built before the lock, on the new view: their queries read the new relations
-- by OID, so the lock window holds only catalog work, never a dependent's query. A view's
-- renamed column keeps its name; a dependent materialized view keeps its planner statistics, as
-- the swapped view does (as a plain REFRESH keeps them).
CREATE TABLE swap_pre_src AS SELECT g AS id, g % 7 AS grp FROM generate_series(1, 2000) g;
SELECT r->>'status' AS created
FROM matviews.create('swap_pre_mv', 'SELECT id, grp FROM public.swap_pre_src') r;
CREATE MATERIALIZED VIEW swap_pre_dep AS SELECT grp, count(*) AS n FROM swap_pre_mv GROUP BY grp;
CREATE UNIQUE INDEX swap_pre_dep_grp ON swap_pre_dep (grp);
CREATE VIEW swap_pre_v AS SELECT d.grp, d.n, (SELECT max(id) FROM swap_pre_mv m WHERE m.grp = d.grp) AS top
    FROM swap_pre_dep d;
ALTER VIEW swap_pre_v RENAME COLUMN n TO total;
-- A swap of a view never analyzed analyzes it; afterwards the statistics are kept.
SELECT r->'response'->>'statistics' AS statistics, r->'response'->>'dependents_built' AS built
FROM matviews.swap('swap_pre_mv') r;
ANALYZE swap_pre_dep;
CREATE TABLE swap_pre_stats AS
    SELECT tablename::text, attname::text, null_frac, n_distinct, most_common_vals::text AS mcv,
           histogram_bounds::text AS hist
    FROM pg_stats WHERE tablename IN ('swap_pre_mv', 'swap_pre_dep');
INSERT INTO swap_pre_src SELECT g, g % 7 FROM generate_series(2001, 2100) g;
SELECT r->'response'->>'statistics' AS statistics, r->'response'->>'dependents_built' AS built,
       r->'response'->'dependents_recreated' AS recreated,
       (SELECT count(*) FROM jsonb_array_elements_text(r->'response'->'sql') s
        WHERE s LIKE 'ANALYZE%') AS analyze_statements
FROM matviews.swap('swap_pre_mv') r;
-- The same statistics as before the swap, for both relations (and no ANALYZE ran).
SELECT count(*) AS stats_rows,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM swap_pre_stats b
           WHERE ROW(b.tablename, b.attname, b.null_frac, b.n_distinct, b.mcv, b.hist)
                 IS NOT DISTINCT FROM ROW(s.tablename::text, s.attname::text, s.null_frac,
                                          s.n_distinct, s.most_common_vals::text,
                                          s.histogram_bounds::text))) AS unchanged
FROM pg_stats s WHERE s.tablename IN ('swap_pre_mv', 'swap_pre_dep');
-- The dependents hold the new data, read the view by its name, and keep their column names.
SELECT (SELECT count(*) FROM swap_pre_mv) AS mv_rows, (SELECT sum(n) FROM swap_pre_dep) AS dep_rows,
       (SELECT sum(total) FROM swap_pre_v) AS v_rows, (SELECT max(top) FROM swap_pre_v) AS v_top;
SELECT pg_get_viewdef('swap_pre_dep'::regclass) AS dep_definition;
SELECT attname FROM pg_attribute WHERE attrelid = 'swap_pre_v'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'swap\_pre%mvswap%';
-- A role with CREATE on the schema that takes a dependent's temporary name cannot stop the swap
-- nor have its relation touched: the next free name is used.
CREATE ROLE mvtest_pre_squatter;
GRANT CREATE ON SCHEMA public TO mvtest_pre_squatter;
SET ROLE mvtest_pre_squatter;
CREATE TABLE swap_pre_dep_mvswap (x int);
INSERT INTO swap_pre_dep_mvswap VALUES (42);
RESET ROLE;
SELECT r->>'status' AS status,
       (SELECT count(*) FROM jsonb_array_elements_text(r->'response'->'sql') s
        WHERE s LIKE '%swap_pre_dep_mvswap2%') > 0 AS used_next_name
FROM matviews.swap('swap_pre_mv') r;
SELECT x, pg_get_userbyid(relowner) AS owner FROM swap_pre_dep_mvswap, pg_class
WHERE pg_class.oid = 'swap_pre_dep_mvswap'::regclass;
DROP TABLE swap_pre_dep_mvswap;
REVOKE CREATE ON SCHEMA public FROM mvtest_pre_squatter;
DROP ROLE mvtest_pre_squatter;
-- A set operation's renamed columns keep their names, and a column grant stays on its column.
CREATE VIEW swap_pre_u AS SELECT id AS a, grp AS b FROM swap_pre_mv UNION ALL SELECT id, grp FROM swap_pre_mv;
ALTER VIEW swap_pre_u RENAME a TO c;
ALTER VIEW swap_pre_u RENAME b TO a;
GRANT SELECT (a) ON swap_pre_u TO mvtest_dep_reader;
-- A dependent that names the view in an expression (a regclass constant) is re-created by name,
-- in the lock window, and the swap succeeds.
CREATE VIEW swap_pre_named AS SELECT 'swap_pre_mv'::regclass AS rel, count(*) AS n FROM swap_pre_src;
SELECT r->>'status' AS status, r->'response'->>'dependents_built' AS built
FROM matviews.swap('swap_pre_mv') r;
SELECT attname, has_column_privilege('mvtest_dep_reader', 'swap_pre_u', attname, 'SELECT') AS reader
FROM pg_attribute WHERE attrelid = 'swap_pre_u'::regclass AND attnum > 0 ORDER BY attnum;
SELECT max(a) AS max_a, max(c) AS max_c FROM swap_pre_u;
SELECT rel::text AS named FROM swap_pre_named;
DROP VIEW swap_pre_named;
-- So does one that names its array type, or one of its indexes.
CREATE INDEX swap_pre_mv_grp ON swap_pre_mv (grp);
CREATE VIEW swap_pre_arr AS SELECT id, '{}'::swap_pre_mv[] AS none, 'swap_pre_mv_grp'::regclass AS idx
    FROM swap_pre_mv WHERE id = 1;
SELECT r->>'status' AS status, r->'response'->>'dependents_built' AS built
FROM matviews.swap('swap_pre_mv') r;
SELECT id, none, idx::text FROM swap_pre_arr;
DROP VIEW swap_pre_arr;
DROP INDEX swap_pre_mv_grp;
SELECT r->>'status' AS status, r->'response'->>'dependents_built' AS built
FROM matviews.swap('swap_pre_mv') r;
-- A redefinition that moves a column the dependents read: they are re-created in the lock
-- window from their text, by name, as before; a redefinition is analyzed.
SELECT r->'response'->>'statistics' AS statistics, r->'response'->>'dependents_built' AS built,
       r->'response'->'dependents_recreated' AS recreated
FROM matviews.swap('swap_pre_mv', sql => 'SELECT grp, id FROM public.swap_pre_src') r;
SELECT (SELECT sum(n) FROM swap_pre_dep) AS dep_rows, (SELECT max(top) FROM swap_pre_v) AS v_top;
SELECT r->>'status' AS status FROM matviews.delete('swap_pre_mv', cascade => true) r;
DROP TABLE swap_pre_src, swap_pre_stats;

-- Clean up.
SELECT r->>'status' AS status FROM matviews.delete('swap_dep_mv', cascade => true) r;
SELECT to_regclass('swap_dep_v1') AS v1, to_regclass('swap_dep_mv2') AS mv2;
DROP TABLE swap_dep_src, swap_dep_log;
DROP FUNCTION swap_dep_trg();
DROP SCHEMA swap_dep_other;
