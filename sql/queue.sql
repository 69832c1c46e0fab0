-- The bounded queue: enqueue coalesces a request into the view's queued, unstarted run of the
-- same operation and strategy; matviews.cancel cancels a queued run, or stops a running one (its
-- work rolled back, the view untouched). Needs the worker (the regress cluster preloads it).
SET client_min_messages = warning;
CREATE ROLE q_alice LOGIN;
CREATE ROLE q_mallory LOGIN;
GRANT CREATE ON SCHEMA public TO q_alice;
-- How long the views' queries sleep, changed between steps.
CREATE TABLE q_nap (seconds float8 NOT NULL);
INSERT INTO q_nap VALUES (0);
GRANT SELECT ON q_nap TO PUBLIC;
CREATE FUNCTION q_nap() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep((SELECT seconds FROM public.q_nap))';
CREATE TABLE q_src (i int);
INSERT INTO q_src VALUES (1), (2);
GRANT SELECT ON q_src TO PUBLIC;
SET ROLE q_alice;
SELECT r->>'status' AS status FROM matviews.create('q_mv', 'SELECT i, public.q_nap() AS n FROM public.q_src') r;
SELECT r->>'status' AS status FROM matviews.create('q_swap', 'SELECT i, public.q_nap() AS n FROM public.q_src',
    refresh_strategy => 'swap') r;

-- 1. Coalescing, inside one transaction (nothing starts before the commit).
BEGIN;
SELECT (matviews.enqueue('q_mv', run_at => now() + interval '1 hour')->>'run_id')::bigint AS first \gset
SELECT (r->>'run_id')::bigint = :first AS same_run, r->'coalesced' AS coalesced, r->>'status' AS status
FROM matviews.enqueue('q_mv') r;
-- ... and the run keeps the earlier run_at of the two.
SELECT run_at <= now() AS run_at_now FROM matviews.runs WHERE id = :first;
-- Another strategy, or another operation, is another request.
SELECT (r->>'run_id')::bigint <> :first AS new_run, r ? 'coalesced' AS coalesced
FROM matviews.enqueue('q_mv', strategy => 'swap') r;
SELECT (r->>'run_id')::bigint <> :first AS new_run FROM matviews.enqueue('q_mv', operation => 'swap') r;
SELECT count(*) AS queued FROM matviews.runs WHERE view = 'public.q_mv' AND status = 'queued';
-- 2. Cancelling queued runs: they end as cancelled, with who cancelled them.
SELECT r->>'status' AS status, r->>'was' AS was FROM matviews.cancel(:first) r;
SELECT status, error->>'sqlstate' AS sqlstate, error->>'detail' AS detail FROM matviews.runs WHERE id = :first;
-- Cancelled again: it has already ended.
SELECT r->>'status' AS status, r->>'reason' AS reason, r->>'run_status' AS run_status FROM matviews.cancel(:first) r;
SELECT count(*) AS cancelled FROM (
    SELECT matviews.cancel(id) FROM matviews.runs WHERE view = 'public.q_mv' AND status = 'queued') c;
COMMIT;
SELECT count(*) AS queued FROM matviews.runs WHERE view = 'public.q_mv' AND status = 'queued';
-- A new request after the cancel is a new run.
BEGIN;
SELECT (r->>'run_id')::bigint <> :first AS new_run, r ? 'coalesced' AS coalesced FROM matviews.enqueue('q_mv') r;
ROLLBACK;

-- 3. Rights: only the run's owner, a member of that role, or a superuser (42501); a run one
-- cannot see does not exist (42704); run_id must not be null (22004).
SELECT (matviews.enqueue('q_mv', run_at => now() + interval '1 hour')->>'run_id')::bigint AS later \gset
RESET ROLE;
SET ROLE q_mallory;
\set VERBOSITY sqlstate
SELECT matviews.cancel(:later);
RESET ROLE;
-- A run mallory can see (she queued it) but whose view she does not own any more.
GRANT q_alice TO q_mallory;
SET ROLE q_mallory;
SELECT (matviews.enqueue('q_mv', strategy => 'regular', run_at => now() + interval '1 hour')->>'run_id')::bigint AS hers \gset
RESET ROLE;
REVOKE q_alice FROM q_mallory;
SET ROLE q_mallory;
SELECT matviews.cancel(:hers);
SELECT matviews.cancel(-1);
SELECT matviews.cancel(NULL);
\set VERBOSITY default
RESET ROLE;
SELECT status FROM matviews.runs WHERE id IN (:later, :hers) ORDER BY id;
-- A superuser may.
SELECT r->>'status' AS status FROM matviews.cancel(:later) r;
SELECT r->>'status' AS status FROM matviews.cancel(:hers) r;

-- 4. Cancelling a running refresh: the job rolls back, the view keeps its rows, and the run is
-- cancelled.
UPDATE q_nap SET seconds = 300;
INSERT INTO q_src VALUES (3);
SET ROLE q_alice;
SELECT (matviews.enqueue('q_mv')->>'run_id')::bigint AS running \gset
RESET ROLE;
SELECT mvtest_wait_for(format($$SELECT count(*) = 1 FROM pg_stat_activity
    WHERE backend_type = 'matviews job' AND wait_event = 'PgSleep'
      AND EXISTS (SELECT 1 FROM matviews.runs WHERE id = %s AND status = 'running')$$, :running)) AS refresh_running;
SET ROLE q_alice;
SELECT r->>'status' AS status, r->>'was' AS was FROM matviews.cancel(:running) r;
SELECT status, error->>'sqlstate' AS sqlstate, error->>'message' AS message, finished_at IS NOT NULL AS finished
FROM matviews.runs WHERE id = :running;
SELECT count(*) AS rows_kept FROM q_mv;

-- 5. Cancelling a running swap: the build is rolled back, no temporary relation is left, and
-- the view keeps its rows and its OID.
SELECT 'q_swap'::regclass::oid AS swap_oid \gset
SELECT (matviews.enqueue('q_swap', operation => 'swap')->>'run_id')::bigint AS swapping \gset
RESET ROLE;
SELECT mvtest_wait_for(format($$SELECT count(*) = 1 FROM pg_stat_activity
    WHERE backend_type = 'matviews job' AND wait_event = 'PgSleep'
      AND EXISTS (SELECT 1 FROM matviews.runs WHERE id = %s AND status = 'running')$$, :swapping)) AS swap_running;
SET ROLE q_alice;
SELECT r->>'status' AS status, r->>'was' AS was FROM matviews.cancel(:swapping) r;
SELECT status FROM matviews.runs WHERE id = :swapping;
SELECT count(*) AS rows_kept, 'q_swap'::regclass::oid = :swap_oid AS same_relation FROM q_swap;
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'q_swap%' AND relname <> 'q_swap';
-- The scheduler carries on: the next run of the view succeeds.
RESET ROLE;
UPDATE q_nap SET seconds = 0;
SET ROLE q_alice;
SELECT (matviews.enqueue('q_mv')->>'run_id')::bigint AS next \gset
SELECT matviews.wait(:next, '60 seconds')->>'status' AS next_run;
SELECT count(*) AS rows_now FROM q_mv;

-- Clean up.
SELECT r->>'status' AS status FROM matviews.delete('q_mv') r;
SELECT r->>'status' AS status FROM matviews.delete('q_swap') r;
RESET ROLE;
DROP TABLE q_src, q_nap;
DROP FUNCTION q_nap();
REVOKE CREATE ON SCHEMA public FROM q_alice;
DROP ROLE q_alice, q_mallory;
