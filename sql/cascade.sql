-- refresh(cascade => true): after the view itself, every materialized view that depends on it,
-- directly or through plain views, is refreshed in dependency order, once each, as its own run
-- (trigger 'cascade'); views that do not depend on it are not touched.

CREATE TABLE cascade_base (id int PRIMARY KEY, v int);
INSERT INTO cascade_base SELECT g, g FROM generate_series(1, 5) g;
-- A chain: cascade_base -> mv_ca -> cascade_v (plain view) -> mv_cb -> mv_cc; and an unrelated mv_cx.
SELECT r->>'status' AS status FROM matviews.create('mv_ca', 'SELECT id, v FROM cascade_base') r;
CREATE VIEW cascade_v AS SELECT id, v * 2 AS v2 FROM mv_ca;
SELECT r->>'status' AS status FROM matviews.create('mv_cb', 'SELECT id, v2 FROM cascade_v') r;
SELECT r->>'status' AS status FROM matviews.create('mv_cc', 'SELECT count(*) AS n, sum(v2) AS s FROM mv_cb') r;
SELECT r->>'status' AS status FROM matviews.create('mv_cx', 'SELECT count(*) AS n FROM cascade_base') r;
CREATE TEMP TABLE cascade_marks AS SELECT max(id) AS last_run FROM matviews.runs;

-- New data at the bottom; a cascade from mv_ca brings it all the way up to mv_cc, in order.
INSERT INTO cascade_base VALUES (6, 6);
SELECT r->>'status' AS status, r->>'view' AS view, r->'request'->'cascade' AS cascade_requested,
       jsonb_path_query_array(r->'response'->'cascade', '$[*].view') AS cascaded,
       jsonb_path_query_array(r->'response'->'cascade', '$[*].status') AS statuses,
       (SELECT bool_and((c->>'run_id')::bigint > (SELECT last_run FROM cascade_marks))
        FROM jsonb_array_elements(r->'response'->'cascade') c) AS run_ids_are_new
FROM matviews.refresh('mv_ca', cascade => true) r;
SELECT * FROM mv_cc;
-- Each is its own run: mv_ca manual, its dependents cascade, in dependency order.
SELECT view, operation, strategy, status, trigger, definition_id IS NOT NULL AS managed
FROM matviews.runs WHERE id > (SELECT last_run FROM cascade_marks) ORDER BY id;
-- The cascade entries point at those runs.
SELECT c->>'view' AS view, r.trigger, r.status
FROM matviews.runs r
JOIN (SELECT jsonb_array_elements(meta->'response'->'cascade') AS c FROM matviews.runs
      WHERE id > (SELECT last_run FROM cascade_marks) AND trigger = 'manual') m
  ON r.id = (m.c->>'run_id')::bigint
ORDER BY r.id;
-- mv_cx was not touched: still the old data, no new run.
SELECT * FROM mv_cx;
SELECT count(*) AS mv_cx_runs FROM matviews.runs WHERE view = 'public.mv_cx' AND id > (SELECT last_run FROM cascade_marks);

-- Without cascade, only the view itself.
INSERT INTO cascade_base VALUES (7, 7);
UPDATE cascade_marks SET last_run = (SELECT max(id) FROM matviews.runs);
SELECT r->>'status' AS status, r->'response'->'cascade' AS cascade FROM matviews.refresh('mv_ca') r;
SELECT * FROM mv_cc;
-- From the middle of the chain: only what is above it.
SELECT jsonb_path_query_array(r->'response'->'cascade', '$[*].view') AS cascaded
FROM matviews.refresh('mv_cb', cascade => true) r;
SELECT * FROM mv_cc;
-- From the top: nothing to cascade to.
SELECT r->>'status' AS status, r->'response'->'cascade' AS cascaded FROM matviews.refresh('mv_cc', cascade => true) r;
SELECT view, trigger FROM matviews.runs WHERE id > (SELECT last_run FROM cascade_marks) ORDER BY id;

-- A diamond: mv_da feeds mv_dl and mv_dr, both feed mv_dt, which also reads mv_da directly.
SELECT r->>'status' AS status FROM matviews.create('mv_da', 'SELECT id, v FROM cascade_base') r;
SELECT r->>'status' AS status FROM matviews.create('mv_dl', 'SELECT id, v FROM mv_da WHERE id % 2 = 0') r;
SELECT r->>'status' AS status FROM matviews.create('mv_dr', 'SELECT id, v FROM mv_da WHERE id % 2 = 1') r;
CREATE VIEW cascade_dv AS SELECT id FROM mv_dl UNION ALL SELECT id FROM mv_dr;
SELECT r->>'status' AS status
FROM matviews.create('mv_dt', 'SELECT (SELECT count(*) FROM cascade_dv) AS both_sides, (SELECT count(*) FROM mv_da) AS direct') r;
INSERT INTO cascade_base VALUES (8, 8), (9, 9);
UPDATE cascade_marks SET last_run = (SELECT max(id) FROM matviews.runs);
SELECT r->>'status' AS status, jsonb_path_query_array(r->'response'->'cascade', '$[*].view') AS cascaded
FROM matviews.refresh('mv_da', cascade => true) r;
SELECT * FROM mv_dt;
-- Each dependent refreshed exactly once, and mv_dt after both sides.
SELECT view, count(*) AS runs, min(id) - (SELECT last_run FROM cascade_marks) AS position
FROM matviews.runs WHERE id > (SELECT last_run FROM cascade_marks) GROUP BY view ORDER BY min(id);

-- A dependent that fails is reported in the cascade; the others still run, and the root's own
-- refresh stands.
SELECT r->>'status' AS status FROM matviews.create('mv_dfail', 'SELECT 10 / (v - 100) AS q FROM mv_da') r;
INSERT INTO cascade_base VALUES (100, 100);
SELECT r->>'status' AS status, c->>'view' AS view, c->>'status' AS cascade_status,
       c->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('mv_da', cascade => true) r, jsonb_array_elements(r->'response'->'cascade') c;
SELECT count(*) AS mv_da_rows FROM mv_da;
SELECT r->>'status' AS status FROM matviews.delete('mv_dfail') r;
DELETE FROM cascade_base WHERE id = 100;

-- When the root refresh fails, nothing cascades.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'response'->'cascade' AS cascade
FROM matviews.refresh('mv_da', strategy => 'concurrent', cascade => true) r;

-- An unmanaged dependent is refreshed too (regular), recorded without a definition.
CREATE MATERIALIZED VIEW mv_dplain AS SELECT count(*) AS n FROM mv_dl;
UPDATE cascade_marks SET last_run = (SELECT max(id) FROM matviews.runs);
SELECT jsonb_path_query_array(r->'response'->'cascade', '$[*].view') AS cascaded
FROM matviews.refresh('mv_dl', cascade => true) r;
SELECT view, strategy, status, trigger, definition_id IS NULL AS unmanaged
FROM matviews.runs WHERE id > (SELECT last_run FROM cascade_marks) ORDER BY id;

-- A layered graph (20 layers, each view reading both views of the layer below) has about a
-- million paths from the root but only 40 dependents: each is found once, quickly.
CREATE MATERIALIZED VIEW mv_lat_1a AS SELECT id FROM mv_ca WHERE id < 0;
CREATE MATERIALIZED VIEW mv_lat_1b AS SELECT id FROM mv_ca WHERE id < 0;
DO $$
BEGIN
    FOR i IN 2..20 LOOP
        EXECUTE format('CREATE MATERIALIZED VIEW mv_lat_%sa AS SELECT id FROM mv_lat_%sa UNION ALL SELECT id FROM mv_lat_%sb', i, i - 1, i - 1);
        EXECUTE format('CREATE MATERIALIZED VIEW mv_lat_%sb AS SELECT id FROM mv_lat_%sa UNION ALL SELECT id FROM mv_lat_%sb', i, i - 1, i - 1);
    END LOOP;
END $$;
-- A cycle of plain views (CREATE OR REPLACE VIEW can build one) does not make the walk loop.
CREATE VIEW cascade_cyc1 AS SELECT id FROM mv_ca;
CREATE VIEW cascade_cyc2 AS SELECT id FROM cascade_cyc1;
CREATE OR REPLACE VIEW cascade_cyc1 AS SELECT id FROM cascade_cyc2;
SET statement_timeout = '5s';
SELECT r->>'status' AS status, jsonb_array_length(r->'response'->'cascade') AS cascaded,
       r->'response'->'cascade'->0->>'view' AS first, r->'response'->'cascade'->-1->>'view' AS last,
       (SELECT count(*) FROM jsonb_array_elements(r->'response'->'cascade') c WHERE c->>'status' = 'updated') AS updated
FROM matviews.refresh('mv_ca', cascade => true) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate,
       jsonb_array_length(r->'response'->'dropped_dependents') AS dropped
FROM matviews.delete('mv_lat_1a') r;
RESET statement_timeout;
SET client_min_messages = warning;
DROP MATERIALIZED VIEW mv_lat_1a, mv_lat_1b CASCADE;
DROP VIEW cascade_cyc1 CASCADE;
RESET client_min_messages;

-- A swap with cascade: the swap re-creates and repopulates the dependents on the new relation,
-- then cascade refreshes each one as its own run, and the response lists them.
CREATE TABLE cascade_sw_src (i int);
INSERT INTO cascade_sw_src SELECT generate_series(1, 5);
SELECT r->>'status' AS status FROM matviews.create('mv_sw_root', 'SELECT i FROM cascade_sw_src') r;
SELECT r->>'status' AS status FROM matviews.create('mv_sw_dep', 'SELECT count(*) AS n FROM mv_sw_root') r;
INSERT INTO cascade_sw_src VALUES (6);
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy,
       r->'response'->'dependents_recreated' AS recreated,
       jsonb_array_length(r->'response'->'cascade') AS cascaded,
       r->'response'->'cascade'->0->>'view' AS first, r->'response'->'cascade'->0->>'status' AS first_status
FROM matviews.refresh('mv_sw_root', strategy => 'swap', cascade => true) r;
SELECT n FROM mv_sw_dep;
SELECT operation, trigger, status FROM matviews.runs WHERE view = 'public.mv_sw_dep' ORDER BY id DESC LIMIT 1;
SELECT r->>'status' AS status FROM matviews.delete('mv_sw_root', cascade => true) r;
DROP TABLE cascade_sw_src;

-- Clean up.
SET client_min_messages = warning;
SELECT r->>'status' AS status, r->'response'->'dropped_dependents' AS dropped
FROM matviews.delete('mv_ca', cascade => true) r;
SELECT r->>'status' AS status, r->'response'->'dropped_dependents' AS dropped
FROM matviews.delete('mv_da', cascade => true) r;
SELECT r->>'status' AS status FROM matviews.delete('mv_cx') r;
SELECT count(*) AS left_over FROM matviews.definitions WHERE view_name LIKE 'mv\_c_' OR view_name LIKE 'mv\_d%';
DROP TABLE cascade_base;
RESET client_min_messages;
