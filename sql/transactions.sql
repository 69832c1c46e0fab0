-- Operations inside the caller's transaction: a failed operation returns an error response and
-- the transaction goes on (earlier work in it is kept); ROLLBACK undoes views, definitions and
-- runs; savepoints nest with the operations' own subtransactions.

CREATE TABLE tx_src (id int PRIMARY KEY, v int);
INSERT INTO tx_src SELECT g, g FROM generate_series(1, 3) g;
-- What exists under a name: relation, definition, runs.
CREATE FUNCTION tx_state(n text) RETURNS TABLE (relation boolean, definition boolean, runs bigint)
LANGUAGE sql AS $$
    SELECT to_regclass(n) IS NOT NULL,
           EXISTS (SELECT 1 FROM matviews.definitions WHERE schema_name = 'public' AND view_name = n),
           (SELECT count(*) FROM matviews.runs WHERE view = 'public.' || n)
$$;

-- A failure in the middle of a transaction: an error response, the transaction goes on and
-- commits, with the earlier and later work kept and the failure recorded.
BEGIN;
SELECT r->>'status' AS status FROM matviews.create('mv_t1', 'SELECT id, v FROM tx_src') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_t2', 'SELECT id, v / 0 AS boom FROM tx_src') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('mv_t1', strategy => 'concurrent') r;
INSERT INTO tx_src VALUES (4, 4);
SELECT r->>'status' AS status FROM matviews.refresh('mv_t1') r;
SELECT 1 AS transaction_still_usable;
COMMIT;
SELECT a.relation AS t1, a.definition AS t1_def, a.runs AS t1_runs, b.relation AS t2, b.definition AS t2_def, b.runs AS t2_runs
FROM tx_state('mv_t1') a, tx_state('mv_t2') b;
SELECT count(*) FROM mv_t1;
SELECT view, operation, status, error->>'sqlstate' AS sqlstate FROM matviews.runs
WHERE view IN ('public.mv_t1', 'public.mv_t2') ORDER BY id;

-- ROLLBACK removes the view, its definition and its runs.
BEGIN;
SELECT r->>'status' AS status FROM matviews.create('mv_t3', 'SELECT id FROM tx_src') r;
SELECT r->>'status' AS status FROM matviews.refresh('mv_t3') r;
SELECT * FROM tx_state('mv_t3');
ROLLBACK;
SELECT * FROM tx_state('mv_t3');
-- ROLLBACK of a delete brings the view and its definition back.
BEGIN;
SELECT r->>'status' AS status FROM matviews.delete('mv_t1') r;
SELECT relation, definition FROM tx_state('mv_t1');
ROLLBACK;
SELECT relation, definition FROM tx_state('mv_t1');
-- ROLLBACK of an alter restores the settings and the managed index.
BEGIN;
SELECT r->>'status' AS status
FROM matviews.alter('mv_t1', unique_index_columns => ARRAY['id'], refresh_strategy => 'concurrent') r;
SELECT refresh_strategy, unique_index_columns FROM matviews.definitions WHERE view_name = 'mv_t1';
ROLLBACK;
SELECT refresh_strategy, unique_index_columns FROM matviews.definitions WHERE view_name = 'mv_t1';
SELECT to_regclass('mv_t1_id_key') IS NULL AS no_index;

-- Savepoints: ROLLBACK TO undoes the operations after it, not those before.
BEGIN;
SELECT r->>'status' AS status FROM matviews.create('mv_t4', 'SELECT id FROM tx_src') r;
SAVEPOINT s1;
SELECT r->>'status' AS status FROM matviews.create('mv_t5', 'SELECT id FROM tx_src') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_t4') r;
SELECT a.relation AS t4, a.definition AS t4_def, b.relation AS t5, b.definition AS t5_def
FROM tx_state('mv_t4') a, tx_state('mv_t5') b;
ROLLBACK TO SAVEPOINT s1;
SELECT a.relation AS t4, a.definition AS t4_def, b.relation AS t5, b.definition AS t5_def
FROM tx_state('mv_t4') a, tx_state('mv_t5') b;
-- A failed operation inside a savepoint leaves the savepoint usable and releasable.
SAVEPOINT s2;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.refresh('mv_t_missing') r;
SELECT r->>'status' AS status FROM matviews.refresh('mv_t4') r;
RELEASE SAVEPOINT s2;
SAVEPOINT s3;
SELECT r->>'status' AS status FROM matviews.create('mv_t6', 'SELECT id FROM tx_src') r;
RELEASE SAVEPOINT s3;
COMMIT;
SELECT a.relation AS t4, a.definition AS t4_def, b.relation AS t5, b.definition AS t5_def,
       c.relation AS t6, c.definition AS t6_def
FROM tx_state('mv_t4') a, tx_state('mv_t5') b, tx_state('mv_t6') c;
SELECT view, operation, status FROM matviews.runs
WHERE view IN ('public.mv_t4', 'public.mv_t5', 'public.mv_t6', 'mv_t_missing') ORDER BY id;

-- The same view twice in one transaction: the per-view lock is the caller's own, no skip.
BEGIN;
SELECT r->>'status' AS status FROM matviews.refresh('mv_t4') r;
SELECT r->>'status' AS status FROM matviews.refresh('mv_t4') r;
SELECT r->>'status' AS status FROM matviews.alter('mv_t4', enabled => false) r;
SELECT r->>'status' AS status FROM matviews.delete('mv_t4') r;
SELECT r->>'status' AS status FROM matviews.create('mv_t4', 'SELECT 1 AS x') r;
COMMIT;
SELECT * FROM mv_t4;

-- In an aborted transaction, matviews cannot run either: PostgreSQL's own error.
BEGIN;
SELECT 1 / 0;
SELECT r->>'status' AS status FROM matviews.refresh('mv_t4') r;
ROLLBACK;

-- In a read-only transaction the run cannot be recorded: PostgreSQL's own error (25006) is
-- raised, as for any write, and nothing happens.
BEGIN READ ONLY;
DO $$
BEGIN
    PERFORM matviews.refresh('mv_t4');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'raised %: %', SQLSTATE, SQLERRM;
END $$;
ROLLBACK;

-- Called from PL/pgSQL: the response comes back; an exception block around it still works.
DO $$
DECLARE r jsonb;
BEGIN
    r := matviews.refresh('mv_t_missing');
    RAISE NOTICE 'status %, sqlstate %', r->>'status', r->'error'->>'sqlstate';
    BEGIN
        r := matviews.create('mv_t7', 'SELECT 1 AS x');
        RAISE NOTICE 'created: %', r->>'status';
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        RAISE NOTICE 'rolled back to the block start';
    END;
    RAISE NOTICE 'mv_t7 exists: %', to_regclass('mv_t7') IS NOT NULL;
END $$;
SELECT * FROM tx_state('mv_t7');

-- Clean up.
SELECT r->>'status' AS status, count(*)
FROM (VALUES ('mv_t1'), ('mv_t4'), ('mv_t6')) v(n), matviews.delete(v.n) r GROUP BY 1;
DROP TABLE tx_src;
DROP FUNCTION tx_state(text);
