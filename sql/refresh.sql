-- matviews.refresh: regular and concurrent, the strategy taken from the definition (or regular
-- for an unmanaged view), the CONCURRENTLY prerequisites (a populated view and a usable unique
-- index), row counts, and every refusal with its SQLSTATE.

CREATE TABLE refresh_src (id int PRIMARY KEY, grp int, v text);
INSERT INTO refresh_src SELECT g, g % 3, 'v' || g FROM generate_series(1, 10) g;
SELECT r->>'status' AS status FROM matviews.create('mv_r', 'SELECT id, grp, v FROM refresh_src') r;
SELECT r->>'status' AS status
FROM matviews.create('mv_rc', 'SELECT id, v FROM refresh_src', refresh_strategy => 'concurrent',
                     unique_index_columns => ARRAY['id']) r;

-- A regular refresh: the whole response, and the new data.
INSERT INTO refresh_src VALUES (11, 2, 'v11');
SELECT jsonb_pretty(mvtest_stable(r)) FROM matviews.refresh('mv_r') r;
SELECT count(*) FROM mv_r;

-- strategy NULL: the definition's strategy (concurrent here).
INSERT INTO refresh_src VALUES (12, 0, 'v12');
SELECT r->>'status' AS status, r->'request'->>'strategy' AS request_strategy,
       r->'response'->>'strategy' AS strategy, r->'response'->'sql' AS sql
FROM matviews.refresh('mv_rc') r;
SELECT count(*) FROM mv_rc;
-- An explicit strategy wins over the definition's.
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy, r->'response'->'sql' AS sql
FROM matviews.refresh('mv_rc', strategy => 'regular') r;
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy
FROM matviews.refresh('mv_rc', strategy => 'concurrent') r;
-- The runs record the strategy used.
SELECT operation, strategy, status, trigger FROM matviews.runs WHERE view = 'public.mv_rc' ORDER BY id;

-- An unmanaged view: regular by default, concurrent when asked and possible.
CREATE MATERIALIZED VIEW mv_r_plain AS SELECT id, v FROM refresh_src;
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy, r->'response'->'sql' AS sql
FROM matviews.refresh('mv_r_plain') r;
SELECT definition_id IS NULL AS unmanaged, strategy, status FROM matviews.runs WHERE view = 'public.mv_r_plain';
SELECT count(*) AS still_unmanaged FROM matviews.definitions WHERE view_name = 'mv_r_plain';

-- Concurrent without any unique index: 55000, with the exact CREATE UNIQUE INDEX to run.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'detail' AS detail, r->'error'->>'hint' AS hint
FROM matviews.refresh('mv_r_plain', strategy => 'concurrent') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'hint' AS hint
FROM matviews.refresh('mv_r', strategy => 'concurrent') r;
-- Indexes PostgreSQL would not accept: non-unique, partial, on an expression: still 55000.
CREATE INDEX mv_r_plain_plain ON mv_r_plain (id);
SELECT r->'error'->>'sqlstate' AS non_unique FROM matviews.refresh('mv_r_plain', strategy => 'concurrent') r;
CREATE UNIQUE INDEX mv_r_plain_partial ON mv_r_plain (id) WHERE id > 0;
SELECT r->'error'->>'sqlstate' AS partial FROM matviews.refresh('mv_r_plain', strategy => 'concurrent') r;
CREATE UNIQUE INDEX mv_r_plain_expr ON mv_r_plain ((id + 0));
SELECT r->'error'->>'sqlstate' AS expression FROM matviews.refresh('mv_r_plain', strategy => 'concurrent') r;
CREATE UNIQUE INDEX mv_r_plain_mixed ON mv_r_plain (id, lower(v));
SELECT r->'error'->>'sqlstate' AS mixed FROM matviews.refresh('mv_r_plain', strategy => 'concurrent') r;
-- PostgreSQL agrees: it refuses CONCURRENTLY with these indexes too.
REFRESH MATERIALIZED VIEW CONCURRENTLY mv_r_plain;
-- A plain unique index on columns is enough.
CREATE UNIQUE INDEX mv_r_plain_good ON mv_r_plain (v, id);
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy
FROM matviews.refresh('mv_r_plain', strategy => 'concurrent') r;

-- A managed view whose unique index was dropped: the hint names the index matviews manages,
-- and running it makes concurrent refresh work again.
DROP INDEX mv_rc_id_key;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'hint' AS hint
FROM matviews.refresh('mv_rc') r;
DO $$
DECLARE h text;
BEGIN
    SELECT r->'error'->>'hint' INTO h FROM matviews.refresh('mv_rc') r;
    EXECUTE substr(h, length('Run: ') + 1);
END $$;
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy FROM matviews.refresh('mv_rc') r;

-- Concurrent on an unpopulated view: a regular refresh, and the response says so.
SELECT r->>'status' AS status
FROM matviews.create('mv_r_empty', 'SELECT id FROM refresh_src', refresh_strategy => 'concurrent',
                     unique_index_columns => ARRAY['id'], with_data => false) r;
SELECT r->>'status' AS status, r->'request'->>'strategy' AS requested, r->'response'->>'strategy' AS strategy,
       r->'response'->>'fallback' AS fallback, r->'response'->>'notice' AS notice, r->'response'->'sql' AS sql
FROM matviews.refresh('mv_r_empty') r;
SELECT strategy, status FROM matviews.runs WHERE view = 'public.mv_r_empty' AND operation = 'refresh';
SELECT relispopulated FROM pg_class WHERE oid = 'mv_r_empty'::regclass;
-- Once populated, concurrent again.
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy, r->'response'->'fallback' AS fallback
FROM matviews.refresh('mv_r_empty') r;
-- Unpopulated and without any unique index: still the regular fallback.
CREATE MATERIALIZED VIEW mv_r_empty2 AS SELECT 1 AS x WITH NO DATA;
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy, r->'response'->>'fallback' AS fallback
FROM matviews.refresh('mv_r_empty2', strategy => 'concurrent') r;

-- strategy => 'swap' rebuilds the view beside the old one and swaps it in (tested in depth in
-- swap*.sql); the relation is a new one with the same name.
SELECT oid AS mv_r_before FROM pg_class WHERE relname = 'mv_r' \gset
SELECT r->>'status' AS status, r->'request'->>'strategy' AS strategy, r->'response'->>'strategy' AS used,
       r->'response'->>'lock_attempts' AS lock_attempts
FROM matviews.refresh('mv_r', strategy => 'swap') r;
SELECT oid <> :mv_r_before AS new_relation FROM pg_class WHERE relname = 'mv_r';
-- A bad strategy: 22023.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.refresh('mv_r', strategy => 'fast') r;

-- A missing view: 42P01. Not a materialized view: 42809.
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate,
       r->'error'->>'message' AS message, r->'error'->>'hint' AS hint
FROM matviews.refresh('mv_r_missing') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('no_such_schema.mv_r') r;
CREATE VIEW refresh_plain_view AS SELECT 1 AS x;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate,
       r->'error'->>'message' AS message, r->'error'->>'detail' AS detail
FROM matviews.refresh('refresh_src') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail
FROM matviews.refresh('refresh_plain_view') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail
FROM matviews.refresh('refresh_src_pkey') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail
FROM matviews.refresh('pg_catalog.pg_class') r;

-- Row counts. estimated: pg_class.reltuples, null while unknown.
SELECT r->'request'->>'row_count_strategy' AS rcs, r->'response'->'row_count_before' AS before,
       r->'response'->'row_count_after' AS after
FROM matviews.refresh('mv_r') r;
ANALYZE mv_r;
SELECT reltuples FROM pg_class WHERE oid = 'mv_r'::regclass;
INSERT INTO refresh_src VALUES (13, 1, 'v13');
SELECT r->'request'->>'row_count_strategy' AS rcs, r->'response'->'row_count_before' AS before,
       r->'response'->'row_count_after' AS after
FROM matviews.refresh('mv_r', row_count_strategy => 'estimated') r;
SELECT reltuples FROM pg_class WHERE oid = 'mv_r'::regclass;
-- exact: count(*) before and after.
DELETE FROM refresh_src WHERE id > 10;
SELECT r->'response'->'row_count_before' AS before, r->'response'->'row_count_after' AS after
FROM matviews.refresh('mv_r', row_count_strategy => 'exact') r;
SELECT row_count_before, row_count_after FROM matviews.runs
WHERE view = 'public.mv_r' AND operation = 'refresh' ORDER BY id DESC LIMIT 1;
-- exact on an unpopulated view: null before, the count after.
SELECT r->>'status' AS status FROM matviews.create('mv_r_empty3', 'SELECT id FROM refresh_src', with_data => false) r;
SELECT r->'response'->'row_count_before' AS before, r->'response'->'row_count_after' AS after
FROM matviews.refresh('mv_r_empty3', row_count_strategy => 'exact') r;
-- none: null, and no count is run.
SELECT r->'response'->'row_count_before' AS before, r->'response'->'row_count_after' AS after,
       r->'response'->'sql' AS sql
FROM matviews.refresh('mv_r', row_count_strategy => 'none') r;
-- Anything else: 22023, and the view is not refreshed.
INSERT INTO refresh_src VALUES (14, 1, 'v14');
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.refresh('mv_r', row_count_strategy => 'exactly') r;
SELECT count(*) AS not_refreshed FROM mv_r;

-- A failing refresh keeps the old data, is recorded as failed, and counts as a failure.
SELECT r->>'status' AS status FROM matviews.create('mv_r_div', 'SELECT 10 / (grp + 1) AS q FROM refresh_src') r;
UPDATE refresh_src SET grp = -1 WHERE id = 1;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.refresh('mv_r_div') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.refresh('mv_r_div') r;
SELECT count(*) AS old_rows FROM mv_r_div;
SELECT exists, populated, last_status, consecutive_failures FROM matviews.status WHERE view = 'public.mv_r_div';
SELECT status, error->>'sqlstate' AS sqlstate FROM matviews.runs
WHERE view = 'public.mv_r_div' AND operation = 'refresh' ORDER BY id;
UPDATE refresh_src SET grp = 1 WHERE id = 1;
SELECT r->>'status' AS status FROM matviews.refresh('mv_r_div') r;
SELECT exists, populated, last_status, consecutive_failures FROM matviews.status WHERE view = 'public.mv_r_div';

-- A refresh of a disabled definition still works when asked for by hand.
SELECT r->>'status' AS status FROM matviews.alter('mv_r', enabled => false) r;
SELECT r->>'status' AS status FROM matviews.refresh('mv_r') r;

-- Per-view statement_timeout: a refresh that takes longer is cancelled (57014), the old data stays.
CREATE FUNCTION refresh_slow(int) RETURNS int LANGUAGE sql AS 'SELECT $1 FROM pg_sleep(0.5)';
SELECT r->>'status' AS status
FROM matviews.create('mv_r_slow', 'SELECT refresh_slow(id) AS id FROM refresh_src WHERE id = 1') r;
SELECT r->>'status' AS status FROM matviews.alter('mv_r_slow', options => '{"statement_timeout": "100ms"}') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.refresh('mv_r_slow') r;
SELECT * FROM mv_r_slow;
-- The caller's own statement_timeout is back in force afterwards (here: none).
SELECT pg_sleep(0.2) IS NOT NULL AS not_cancelled;
SELECT r->>'status' AS status FROM matviews.alter('mv_r_slow', options => '{"statement_timeout": null}') r;
SELECT r->>'status' AS status FROM matviews.refresh('mv_r_slow') r;

-- Clean up.
SELECT r->>'status' AS status, count(*)
FROM (VALUES ('mv_r'), ('mv_rc'), ('mv_r_plain'), ('mv_r_empty'), ('mv_r_empty2'), ('mv_r_empty3'),
             ('mv_r_div'), ('mv_r_slow')) v(n),
     matviews.delete(v.n) r
GROUP BY 1;
DROP VIEW refresh_plain_view;
DROP TABLE refresh_src;
DROP FUNCTION refresh_slow(int);
