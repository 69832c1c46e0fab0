-- matviews.delete: drops the view and removes its definition; if_exists, keep_definition,
-- cascade; refused (2BP01, nothing dropped) while other objects depend on it.

CREATE TABLE delete_src (id int PRIMARY KEY, v int);
INSERT INTO delete_src SELECT g, g FROM generate_series(1, 5) g;
-- What is left of a name: the relation and the definition.
CREATE FUNCTION delete_state(n text) RETURNS TABLE (relation boolean, definition boolean)
LANGUAGE sql AS $$
    SELECT to_regclass(n) IS NOT NULL,
           EXISTS (SELECT 1 FROM matviews.definitions WHERE schema_name = 'public' AND view_name = n)
$$;

-- A plain delete: the whole response; the view and its definition are gone.
SELECT r->>'status' AS status FROM matviews.create('mv_d1', 'SELECT id FROM delete_src') r;
SELECT jsonb_pretty(mvtest_stable(r)) FROM matviews.delete('mv_d1') r;
SELECT * FROM delete_state('mv_d1');
SELECT operation, status, definition_id IS NOT NULL AS had_definition FROM matviews.runs
WHERE view = 'public.mv_d1' ORDER BY id;

-- Missing: skipped with if_exists (the default), 42P01 without.
SELECT r->>'status' AS status, r->>'view' AS view, r->'response'->>'reason' AS reason
FROM matviews.delete('mv_d1') r;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate,
       r->'error'->>'message' AS message, r->'error'->>'hint' AS hint
FROM matviews.delete('mv_d1', if_exists => false) r;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.delete('no_such_schema.mv_d1', if_exists => false) r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.delete('no_such_schema.mv_d1') r;

-- Not a materialized view: 42809, nothing dropped.
CREATE VIEW delete_plain_view AS SELECT 1 AS x;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'detail' AS detail
FROM matviews.delete('delete_src') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail
FROM matviews.delete('delete_plain_view', cascade => true) r;
SELECT to_regclass('delete_src') IS NOT NULL AS table_kept, to_regclass('delete_plain_view') IS NOT NULL AS view_kept;

-- An unmanaged materialized view is dropped; no definition to remove.
CREATE MATERIALIZED VIEW mv_d_plain AS SELECT 1 AS x;
SELECT r->>'status' AS status, r->'response'->'definitions_removed' AS removed, r->'response'->'sql' AS sql
FROM matviews.delete('mv_d_plain') r;
SELECT * FROM delete_state('mv_d_plain');

-- keep_definition: the view goes, the definition stays (status shows it missing).
SELECT r->>'status' AS status FROM matviews.create('mv_d2', 'SELECT id, v FROM delete_src', unique_index_columns => ARRAY['id']) r;
SELECT r->>'status' AS status, r->'request'->'keep_definition' AS keep,
       r->'response'->'definitions_removed' AS removed
FROM matviews.delete('mv_d2', keep_definition => true) r;
SELECT * FROM delete_state('mv_d2');
SELECT view, exists, populated FROM matviews.status WHERE view = 'public.mv_d2';
-- The kept definition: create skips it, refresh cannot find the view, alter still works.
SELECT r->>'status' AS status, r->'response'->>'reason' AS reason FROM matviews.create('mv_d2', 'SELECT 1 AS id') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.refresh('mv_d2') r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.alter('mv_d2', enabled => false) r;
-- keep_definition on a missing view leaves the kept definition alone.
SELECT r->>'status' AS status, r->'response'->>'reason' AS reason
FROM matviews.delete('mv_d2', keep_definition => true) r;
SELECT * FROM delete_state('mv_d2');
-- Deleting a kept definition whose view is gone removes the definition.
SELECT r->>'status' AS status, r->>'view' AS view, r->'response'->'view_existed' AS view_existed,
       r->'response'->'definition_removed' AS definition_removed, r->'response'->'sql' AS sql
FROM matviews.delete('mv_d2', if_exists => false) r;
SELECT * FROM delete_state('mv_d2');
SELECT count(*) AS status_rows FROM matviews.status WHERE view = 'public.mv_d2';
-- Found through search_path too.
CREATE SCHEMA delete_s;
SELECT r->>'status' AS status FROM matviews.create('delete_s.mv_d3', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status FROM matviews.delete('delete_s.mv_d3', keep_definition => true) r;
SET search_path = delete_s, public;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.delete('mv_d3') r;
RESET search_path;
SELECT count(*) AS definitions FROM matviews.definitions WHERE schema_name = 'delete_s';

-- Dependents without cascade: 2BP01, the hint lists them and suggests cascade => true, nothing
-- is dropped.
SELECT r->>'status' AS status FROM matviews.create('mv_dp', 'SELECT id, v FROM delete_src') r;
CREATE VIEW delete_dep_v AS SELECT id FROM mv_dp;
SELECT r->>'status' AS status FROM matviews.create('mv_dp2', 'SELECT id FROM delete_dep_v') r;
SELECT r->>'status' AS status FROM matviews.create('mv_dp3', 'SELECT count(*) AS n FROM mv_dp2') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'detail' AS detail, r->'error'->>'hint' AS hint, r->'response'->'sql' AS sql
FROM matviews.delete('mv_dp') r;
SELECT * FROM delete_state('mv_dp'), delete_state('delete_dep_v') v, delete_state('mv_dp2') m2, delete_state('mv_dp3') m3;
-- With keep_definition but without cascade: refused the same way.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.delete('mv_dp', keep_definition => true) r;
-- The middle of the chain: only what is above it.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'hint' AS hint
FROM matviews.delete('mv_dp2') r;
-- With cascade: everything above is dropped, and the definitions of the dropped views go too.
SELECT r->>'status' AS status, r->'response'->'dropped_dependents' AS dropped,
       r->'response'->'definitions_removed' AS removed, r->'response'->'sql' AS sql
FROM matviews.delete('mv_dp', cascade => true) r;
SELECT * FROM delete_state('mv_dp'), delete_state('delete_dep_v') v, delete_state('mv_dp2') m2, delete_state('mv_dp3') m3;

-- cascade with keep_definition: every definition stays.
SELECT r->>'status' AS status FROM matviews.create('mv_dk', 'SELECT id FROM delete_src') r;
SELECT r->>'status' AS status FROM matviews.create('mv_dk2', 'SELECT id FROM mv_dk') r;
SELECT r->>'status' AS status, r->'response'->'dropped_dependents' AS dropped,
       r->'response'->'definitions_removed' AS removed
FROM matviews.delete('mv_dk', cascade => true, keep_definition => true) r;
SELECT * FROM delete_state('mv_dk'), delete_state('mv_dk2') k2;
SELECT r->>'status' AS status FROM matviews.delete('mv_dk') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_dk2') r;

-- Objects other than views that depend on the view's row type are dependents too.
SELECT r->>'status' AS status FROM matviews.create('mv_dfn', 'SELECT id FROM delete_src') r;
CREATE FUNCTION delete_uses_row(mv_dfn) RETURNS int LANGUAGE sql AS 'SELECT $1.id';
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail,
       r->'error'->>'hint' AS hint
FROM matviews.delete('mv_dfn') r;
SELECT * FROM delete_state('mv_dfn');
SELECT r->>'status' AS status, r->'response'->'dropped_dependents' AS dropped
FROM matviews.delete('mv_dfn', cascade => true) r;
SELECT to_regprocedure('delete_uses_row(int)') IS NULL AS function_dropped,
       (SELECT count(*) FROM pg_proc WHERE proname = 'delete_uses_row') AS functions;

-- A delete that fails leaves everything as it was, recorded as failed.
SELECT operation, status, error->>'sqlstate' AS sqlstate FROM matviews.runs
WHERE view = 'public.mv_dp' AND operation = 'delete' ORDER BY id;

-- Clean up.
DROP VIEW delete_plain_view;
DROP SCHEMA delete_s;
DROP TABLE delete_src;
DROP FUNCTION delete_state(text);
