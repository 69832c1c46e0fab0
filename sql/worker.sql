-- The background worker, seen from SQL (the regression cluster preloads matviews): enqueued runs
-- start after commit and never on rollback, run_at, the job as the view's owner (LOGIN and
-- NOLOGIN), pg_stat_activity, interval schedules that never overlap, cron next_run_at, retries
-- with growing backoff, a scheduled view dropped behind matviews' back, and the errors of the
-- background functions. Every wait is on a real condition (matviews.wait, mvtest_wait_for).

-- The SQLSTATE a statement raises, or 'ok'.
CREATE FUNCTION mvtest_sqlstate(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
-- Sleeps as long as wk_nap says: slow refreshes whose length the test controls.
CREATE TABLE wk_nap (seconds float8 NOT NULL);
INSERT INTO wk_nap VALUES (0);
CREATE FUNCTION mvtest_nap() RETURNS int LANGUAGE sql AS
    'SELECT 1 FROM pg_sleep((SELECT seconds FROM wk_nap))';

-- This database has a scheduler, visible with its application name.
SELECT mvtest_wait_for($$
    SELECT count(*) = 1 FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'matviews scheduler'
      AND application_name = 'matviews scheduler'$$) AS scheduler_running;

CREATE TABLE wk_src (i int);
INSERT INTO wk_src VALUES (1);
SELECT r->>'status' AS status
FROM matviews.create('wk_mv', 'SELECT count(*) AS n FROM wk_src') r;
INSERT INTO wk_src VALUES (2);

-- An enqueued refresh does not start before the caller commits: inside the transaction, wait
-- times out with the run still queued and the view unchanged.
BEGIN;
SELECT r->>'status' AS status, r->>'operation' AS operation, r->>'view' AS view,
       r->'response' ? 'warning' AS warned, (r->>'run_id')::bigint AS run_id
FROM matviews.enqueue('wk_mv') r \gset
SELECT :'status' AS status, :'operation' AS operation, :'view' AS view, :'warned' AS warned;
SELECT w->>'status' AS status, w->>'timed_out' AS timed_out
FROM matviews.wait(:run_id, '300 ms') w;
SELECT n FROM wk_mv;
COMMIT;
-- After commit it runs, and wait returns its outcome.
SELECT w->>'status' AS status, w->>'operation' AS operation, w->>'trigger' AS trigger,
       w->>'strategy' AS strategy, w->>'timed_out' AS timed_out
FROM matviews.wait(:run_id, '60 seconds') w;
SELECT n FROM wk_mv;
SELECT status, trigger, role = current_user AS as_owner, owner = current_user AS owner,
       pid IS NOT NULL AS has_pid,
       started_at <= finished_at AS timed, error IS NULL AS no_error
FROM matviews.runs WHERE id = :run_id;

-- A rolled-back enqueue never runs: the run does not exist, and once a later committed run has
-- been served, the view has exactly two queued runs.
INSERT INTO wk_src VALUES (3);
BEGIN;
SELECT (r->>'run_id')::bigint AS rolled_back_id FROM matviews.enqueue('wk_mv') r \gset
ROLLBACK;
SELECT (r->>'run_id')::bigint AS later_id FROM matviews.enqueue('wk_mv') r \gset
SELECT w->>'status' AS status FROM matviews.wait(:later_id, '60 seconds') w;
SELECT count(*) AS rolled_back_runs FROM matviews.runs WHERE id = :rolled_back_id;
SELECT count(*) AS queue_runs FROM matviews.runs WHERE view = 'public.wk_mv' AND trigger = 'queue';
SELECT mvtest_sqlstate(format('SELECT matviews.wait(%s)', :rolled_back_id)) AS wait_rolled_back;

-- run_at: a run queued for later does not start before then.
SELECT (r->>'run_id')::bigint AS later_run FROM
    matviews.enqueue('wk_mv', run_at => clock_timestamp() + interval '1 second') r \gset
SELECT w->>'status' AS status FROM matviews.wait(:later_run, '60 seconds') w;
SELECT started_at >= run_at AS not_early FROM matviews.runs WHERE id = :later_run;

-- A queued swap.
SELECT (r->>'run_id')::bigint AS swap_run FROM matviews.enqueue('wk_mv', operation => 'swap') r \gset
SELECT w->>'status' AS status, w->>'operation' AS operation, w->>'strategy' AS strategy
FROM matviews.wait(:swap_run, '60 seconds') w;

-- The job runs as the view's owner. A LOGIN owner: the job connects as that role.
CREATE ROLE regress_mv_login LOGIN;
CREATE ROLE regress_mv_nologin NOLOGIN;
GRANT SELECT ON wk_src TO regress_mv_login, regress_mv_nologin;
GRANT CREATE ON SCHEMA public TO regress_mv_login, regress_mv_nologin;
SET ROLE regress_mv_login;
SELECT r->>'status' AS status FROM matviews.create('wk_login',
    'SELECT current_user::text AS cu, session_user::text AS su, (SELECT count(*) FROM wk_src) AS n') r;
SELECT (r->>'run_id')::bigint AS login_run FROM matviews.enqueue('wk_login') r \gset
RESET ROLE;
SELECT w->>'status' AS status FROM matviews.wait(:login_run, '60 seconds') w;
SELECT cu, su, n FROM wk_login;
SELECT role, owner FROM matviews.runs WHERE id = :login_run;
-- A NOLOGIN owner: the job connects as the bootstrap superuser and switches to the owner. A
-- concurrent refresh (which creates a temporary table in the job's security context) works.
SET ROLE regress_mv_nologin;
SELECT r->>'status' AS status FROM matviews.create('wk_nologin',
    'SELECT 1 AS id, current_user::text AS cu, session_user::text AS su, (SELECT count(*) FROM wk_src) AS n',
    refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id']) r;
SELECT (r->>'run_id')::bigint AS nologin_run FROM matviews.enqueue('wk_nologin') r \gset
RESET ROLE;
INSERT INTO wk_src VALUES (4);
SELECT w->>'status' AS status, w->>'strategy' AS strategy
FROM matviews.wait(:nologin_run, '60 seconds') w;
SELECT cu, su = (SELECT rolname FROM pg_roles WHERE oid = 10) AS su_is_bootstrap, n FROM wk_nologin;
SELECT role, owner FROM matviews.runs WHERE id = :nologin_run;

-- pg_stat_activity shows what a job does, with its application name.
SELECT r->>'status' AS status FROM matviews.create('wk_slow', 'SELECT mvtest_nap() AS x') r;
UPDATE wk_nap SET seconds = 1.5;
SELECT (r->>'run_id')::bigint AS slow_run FROM matviews.enqueue('wk_slow') r \gset
SELECT mvtest_wait_for($$
    SELECT count(*) = 1 FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'matviews job'
      AND application_name = 'matviews job'
      AND query = 'matviews: refresh public.wk_slow (regular)'$$) AS activity_shown;
SELECT w->>'status' AS status FROM matviews.wait(:slow_run, '60 seconds') w;

-- An interval schedule of 1 second with a refresh slower than that: repeated runs, each
-- starting at least the interval after the previous one finished, so never two at once.
UPDATE wk_nap SET seconds = 1.2;
SELECT r->>'status' AS status, r->'response'->>'kind' AS kind, r->'response'->>'schedule' AS schedule
FROM matviews.schedule('wk_slow', '1 second') r;
SELECT mvtest_wait_for($$
    SELECT count(*) >= 3 FROM matviews.runs
    WHERE view = 'public.wk_slow' AND trigger = 'schedule' AND status = 'success'$$,
    '90 seconds') AS repeated;
SELECT r->>'status' AS status, r->'response'->>'previous_schedule' AS previous
FROM matviews.unschedule('wk_slow') r;
SELECT mvtest_wait_for($$
    SELECT count(*) = 0 FROM matviews.runs
    WHERE view = 'public.wk_slow' AND status IN ('queued', 'running')$$) AS settled;
WITH s AS (
    SELECT started_at, finished_at,
           lag(finished_at) OVER (ORDER BY started_at) AS previous_finished
    FROM matviews.runs WHERE view = 'public.wk_slow' AND trigger = 'schedule')
SELECT bool_and(started_at >= previous_finished) AS never_overlap,
       bool_and(started_at - previous_finished >= interval '1 second') AS interval_after_finish,
       bool_and(finished_at - started_at >= interval '1.2 seconds') AS slower_than_interval
FROM s WHERE previous_finished IS NOT NULL;
SELECT schedule, next_run_at FROM matviews.status WHERE view = 'public.wk_slow';
UPDATE wk_nap SET seconds = 0;
-- Unscheduling again: skipped.
SELECT r->>'status' AS status, r->'response'->>'reason' AS reason
FROM matviews.unschedule('wk_slow') r;

-- Cron schedules: next_run_at in matviews.status is the expression's next tick (UTC, the
-- default matviews.timezone).
SELECT r->>'status' AS status FROM matviews.create('wk_cron', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status, r->'response'->>'kind' AS kind,
       r->'response'->>'schedule' AS schedule, r->'response'->>'timezone' AS timezone
FROM matviews.schedule('wk_cron', '17 3 * * *') r;
SELECT mvtest_wait_for($$
    SELECT next_run_at IS NOT NULL FROM matviews.status WHERE view = 'public.wk_cron'$$) AS computed;
WITH t AS (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') + interval '3 hours 17 minutes' AS tick)
SELECT s.next_run_at = (CASE WHEN t.tick > now() AT TIME ZONE 'UTC' THEN t.tick
                             ELSE t.tick + interval '1 day' END) AT TIME ZONE 'UTC' AS next_tick
FROM matviews.status s, t WHERE s.view = 'public.wk_cron';
SELECT r->>'status' AS status FROM matviews.schedule('wk_cron', '0 0 1 * *') r;
SELECT mvtest_wait_for($$
    SELECT next_run_at = (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')
                         AT TIME ZONE 'UTC'
    FROM matviews.status WHERE view = 'public.wk_cron'$$) AS first_of_next_month;
SELECT r->>'status' AS status FROM matviews.schedule('wk_cron', '@daily') r;
SELECT mvtest_wait_for($$
    SELECT next_run_at = (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day')
                         AT TIME ZONE 'UTC'
    FROM matviews.status WHERE view = 'public.wk_cron'$$) AS next_midnight;
SELECT r->>'status' AS status FROM matviews.unschedule('wk_cron') r;
SELECT schedule, next_run_at FROM matviews.status WHERE view = 'public.wk_cron';

-- A failing view retries with growing backoff (max_retries and retry_delay keep this fast):
-- consecutive_failures grows one by one, and after the n-th failure the next run waits at least
-- half the backoff ceiling, 0.5 s * 2^(n-1) with a 1-second base: 0.5 s, 1 s, 2 s. It never
-- hot-loops.
CREATE TABLE wk_flag (fail boolean NOT NULL);
INSERT INTO wk_flag VALUES (false);
CREATE FUNCTION mvtest_maybe_fail() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT fail FROM wk_flag) THEN
        RAISE EXCEPTION 'wk_fail is failing' USING ERRCODE = 'P0001';
    END IF;
    RETURN 1;
END $$;
SELECT r->>'status' AS status FROM matviews.create('wk_fail', 'SELECT mvtest_maybe_fail() AS x') r;
SELECT r->>'status' AS status
FROM matviews.alter('wk_fail', options => '{"max_retries": 2, "retry_delay": "1 second"}') r;
UPDATE wk_flag SET fail = true;
SELECT r->>'status' AS status FROM matviews.schedule('wk_fail', '1 second') r;
SELECT mvtest_wait_for($$SELECT consecutive_failures = 1 FROM matviews.status WHERE view = 'public.wk_fail'$$, '60 s') AS one;
SELECT mvtest_wait_for($$SELECT consecutive_failures = 2 FROM matviews.status WHERE view = 'public.wk_fail'$$, '60 s') AS two;
SELECT mvtest_wait_for($$SELECT consecutive_failures = 3 FROM matviews.status WHERE view = 'public.wk_fail'$$, '60 s') AS three;
SELECT mvtest_wait_for($$SELECT consecutive_failures = 4 FROM matviews.status WHERE view = 'public.wk_fail'$$, '60 s') AS four;
SELECT r->>'status' AS status FROM matviews.unschedule('wk_fail') r;
SELECT mvtest_wait_for($$
    SELECT count(*) = 0 FROM matviews.runs
    WHERE view = 'public.wk_fail' AND status IN ('queued', 'running')$$) AS settled;
WITH f AS (
    SELECT started_at - lag(finished_at) OVER (ORDER BY started_at) AS gap,
           row_number() OVER (ORDER BY started_at) - 1 AS failures
    FROM matviews.runs WHERE view = 'public.wk_fail' AND trigger = 'schedule')
SELECT count(*) >= 3 AS gaps,
       bool_and(gap >= interval '0.5 seconds' * 2 ^ (failures - 1)) AS growing_backoff
FROM f WHERE gap IS NOT NULL;
SELECT DISTINCT status, error->>'sqlstate' AS sqlstate, error->>'message' AS message
FROM matviews.runs WHERE view = 'public.wk_fail' AND trigger = 'schedule';
SELECT last_status, consecutive_failures >= 4 AS counted FROM matviews.status WHERE view = 'public.wk_fail';
-- A success resets the count.
UPDATE wk_flag SET fail = false;
SELECT r->>'status' AS status FROM matviews.refresh('wk_fail') r;
SELECT last_status, consecutive_failures FROM matviews.status WHERE view = 'public.wk_fail';

-- A scheduled view dropped behind matviews' back: the DROP removes its definition and schedule
-- (the sql_drop event trigger) and cancels its queued run; the scheduler carries on. A view that
-- takes the name later is neither scheduled nor managed: nothing binds to it by name.
SELECT r->>'status' AS status FROM matviews.create('wk_gone', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status
FROM matviews.alter('wk_gone', options => '{"max_retries": 0, "retry_delay": "1 second"}') r;
SELECT pid AS scheduler_pid FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'matviews scheduler' \gset
SELECT r->>'status' AS status FROM matviews.schedule('wk_gone', '1 hour') r;
SELECT (r->>'run_id')::bigint AS gone_run
FROM matviews.enqueue('wk_gone', run_at => now() + interval '1 hour') r \gset
DROP MATERIALIZED VIEW wk_gone;
SELECT count(*) AS definitions FROM matviews.definitions WHERE view_name = 'wk_gone';
SELECT status, relid, error->>'sqlstate' AS sqlstate, error->>'message' AS message
FROM matviews.runs WHERE id = :gone_run;
CREATE MATERIALIZED VIEW wk_gone AS SELECT 2 AS x;
SELECT count(*) AS managed FROM matviews.status WHERE view = 'public.wk_gone';
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.unschedule('wk_gone') r;
SELECT count(*) = 1 AS same_scheduler FROM pg_stat_activity
WHERE pid = :scheduler_pid AND backend_type = 'matviews scheduler';
SELECT r->>'status' AS status FROM matviews.delete('wk_gone') r;

-- Errors of the background functions.
-- A bad schedule: 22023, with a hint that shows both forms.
SELECT r->>'status' AS status, r->'error' AS error
FROM matviews.schedule('wk_mv', 'every tuesday') r;
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail
FROM matviews.schedule('wk_mv', '500 ms') r;
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail
FROM matviews.schedule('wk_mv', '61 * * * *') r;
SELECT r->'error'->>'sqlstate' AS sqlstate FROM matviews.schedule('wk_mv', NULL) r;
SELECT schedule FROM matviews.status WHERE view = 'public.wk_mv';
-- Enqueue of a view the caller does not own: 42501, and nothing is queued.
SET ROLE regress_mv_login;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.enqueue('wk_mv') r;
SELECT r->'error'->>'sqlstate' AS sqlstate FROM matviews.schedule('wk_mv', '1 hour') r;
RESET ROLE;
SELECT count(*) AS queued FROM matviews.runs WHERE view = 'public.wk_mv' AND status = 'queued';
-- A missing view: 42P01; a table: 42809; an operation that cannot be queued: 22023.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.enqueue('wk_missing') r;
SELECT r->'error'->>'sqlstate' AS sqlstate FROM matviews.enqueue('wk_src') r;
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.enqueue('wk_mv', operation => 'delete') r;
SELECT r->'error'->>'sqlstate' AS sqlstate FROM matviews.enqueue('wk_mv', strategy => 'fast') r;
SELECT r->'error'->>'sqlstate' AS sqlstate FROM matviews.schedule('wk_missing', '1 hour') r;
SELECT r->'error'->>'sqlstate' AS sqlstate FROM matviews.unschedule('wk_missing') r;
-- Refused enqueues are recorded as failed 'enqueue' runs.
SELECT view, status, error->>'sqlstate' AS sqlstate FROM matviews.runs
WHERE operation = 'enqueue' ORDER BY id;
-- wait: an unknown run is 42704 (raised); a null run_id is 22004.
SELECT matviews.wait(-1);
SELECT mvtest_sqlstate('SELECT matviews.wait(-1)') AS unknown_run;
SELECT mvtest_sqlstate('SELECT matviews.wait(NULL)') AS null_run;
-- wait in a REPEATABLE READ transaction would never see the run change: 25001.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT mvtest_sqlstate(format('SELECT matviews.wait(%s)', :run_id)) AS repeatable_read;
COMMIT;

-- Nothing is left queued or running.
SELECT mvtest_wait_for($$
    SELECT count(*) = 0 FROM matviews.runs WHERE status IN ('queued', 'running')$$) AS all_done;

SELECT r->>'status' AS status FROM matviews.delete('wk_login') r;
SELECT r->>'status' AS status FROM matviews.delete('wk_nologin') r;
REVOKE ALL ON wk_src FROM regress_mv_login, regress_mv_nologin;
REVOKE CREATE ON SCHEMA public FROM regress_mv_login, regress_mv_nologin;
DROP ROLE regress_mv_login, regress_mv_nologin;
