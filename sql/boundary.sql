-- The C++/PostgreSQL boundary, seen from SQL: a PostgreSQL error raised inside a guarded call
-- arrives intact (SQLSTATE, message, detail, hint) in the response; the backend survives it and
-- the caller's transaction stays usable. Also: the launcher runs and is visible.

-- Test helpers used by later files too.
-- The response without the fields that change from run to run.
CREATE FUNCTION mvtest_stable(r jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT r #- '{run_id}' #- '{response,duration_ms}'
$$;
-- Polls a boolean query until it is true or timeout passes; returns whether it became true.
CREATE FUNCTION mvtest_wait_for(q text, timeout interval DEFAULT '30 seconds') RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    ok boolean;
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();  -- pg_stat_activity is otherwise frozen at first read
        EXECUTE q INTO ok;
        IF ok THEN RETURN true; END IF;
        IF clock_timestamp() > deadline THEN RETURN false; END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END $$;

-- A function that raises a user error with every field set.
CREATE FUNCTION mvtest_boom() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'boom from the view query'
        USING ERRCODE = 'P0042', DETAIL = 'the detail survives', HINT = 'the hint survives';
END $$;

-- The error arrives intact in the response, with its own SQLSTATE.
SELECT r->>'status' AS status,
       r->'error'->>'sqlstate' AS sqlstate,
       r->'error'->>'message' AS message,
       r->'error'->>'detail' AS detail,
       r->'error'->>'hint' AS hint
FROM matviews.create('mv_boom', 'SELECT mvtest_boom() AS x') r;

-- The backend survived, and nothing was created.
SELECT 1 AS still_alive;
SELECT to_regclass('mv_boom') IS NULL AS not_created;

-- The failure is recorded as a failed run with the same error.
SELECT operation, status, error->>'sqlstate' AS sqlstate, error->>'hint' AS hint
FROM matviews.runs WHERE view = 'public.mv_boom' ORDER BY id;

-- Inside an explicit transaction the failure is returned, and the transaction goes on.
BEGIN;
CREATE TABLE mvtest_t (i int);
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_boom', 'SELECT mvtest_boom() AS x') r;
INSERT INTO mvtest_t VALUES (1);
SELECT r->>'status' AS status FROM matviews.create('mv_ok', 'SELECT i FROM mvtest_t') r;
COMMIT;
SELECT * FROM mv_ok;

-- Errors PostgreSQL raises deep inside (division by zero while filling the view).
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.create('mv_div', 'SELECT 1/0 AS x') r;

-- Errors matviews raises itself carry SQLSTATE, detail and hint too.
SELECT r->'error' AS error FROM matviews.refresh('a.b.c') r;

-- The response is built with PostgreSQL's jsonb: every documented key is there.
SELECT ARRAY(SELECT jsonb_object_keys(r) ORDER BY 1) AS keys,
       ARRAY(SELECT jsonb_object_keys(r->'response') ORDER BY 1) AS response_keys
FROM matviews.refresh('mv_ok') r;

-- Arguments: NULL where a value is required gives an error response, not a crash.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh(NULL) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_x', NULL) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_x', 'SELECT 1', unique_index_columns => ARRAY[NULL]::text[]) r;

-- A cancel (statement_timeout) inside an operation comes back as an error response.
SELECT r->>'status' AS status FROM matviews.alter('mv_ok', options => '{"statement_timeout": "50ms"}') r;
CREATE FUNCTION mvtest_slow() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(2)';
CREATE OR REPLACE VIEW mvtest_slow_v AS SELECT mvtest_slow() AS x;
SELECT r->>'status' AS status FROM matviews.create('mv_slow2', 'SELECT x FROM mvtest_slow_v', with_data => false) r;
SELECT r->>'status' AS status FROM matviews.alter('mv_slow2', options => '{"statement_timeout": "100ms"}') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.refresh('mv_slow2') r;
SELECT 1 AS still_alive_after_timeout;

-- The launcher runs when the library is preloaded, visible in pg_stat_activity.
SELECT mvtest_wait_for($$SELECT count(*) = 1 FROM pg_stat_activity
                         WHERE backend_type = 'matviews launcher'
                           AND application_name = 'matviews launcher'$$) AS launcher_running;
