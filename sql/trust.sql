-- The trust model (docs/security.md): no role gets more through matviews than plain SQL gives
-- it. Each block is an attack tried as a hostile role with CREATE on a schema would try it.
SET client_min_messages = warning;
CREATE ROLE tr_mallory LOGIN;
CREATE ROLE tr_alice LOGIN;
CREATE ROLE tr_bob LOGIN;
GRANT CREATE ON SCHEMA public TO tr_mallory, tr_alice;

-- Every trap below records who ran it and whether that role was a superuser.
CREATE TABLE tr_log (fired_as name, superuser boolean, what text);
GRANT INSERT, SELECT ON tr_log TO PUBLIC;
CREATE FUNCTION tr_note(what text) RETURNS boolean LANGUAGE sql VOLATILE AS $$
    INSERT INTO public.tr_log
    SELECT current_user, (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), what;
    SELECT true
$$;
ALTER FUNCTION tr_note(text) OWNER TO tr_mallory;

-- 1. The scheduler connects as the bootstrap superuser with the database's search_path. Mallory
-- plants operators for the argument types matviews' own SQL uses and functions that shadow
-- pg_catalog's, in public and in a schema named after the bootstrap superuser ("$user" comes
-- first in the default search_path), and the database puts them before pg_catalog.
SELECT rolname AS bootstrap FROM pg_roles WHERE oid = 10 \gset
CREATE SCHEMA :"bootstrap" AUTHORIZATION tr_mallory;
SET ROLE tr_mallory;
CREATE FUNCTION public.tr_div(float8, numeric) RETURNS float8 LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('/(float8,numeric)') THEN $1 OPERATOR(pg_catalog./) $2::float8 END $$;
CREATE OPERATOR public./ (LEFTARG = float8, RIGHTARG = numeric, FUNCTION = public.tr_div);
CREATE FUNCTION public.tr_eq8(bigint, bigint) RETURNS boolean LANGUAGE sql AS
    $$ SELECT public.tr_note('=(bigint,bigint)') AND $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.tr_eq8);
CREATE FUNCTION public.tr_eqt(text, text) RETURNS boolean LANGUAGE sql AS
    $$ SELECT public.tr_note('=(text,text)') AND $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.tr_eqt);
CREATE FUNCTION public.tr_cat(jsonb, jsonb) RETURNS jsonb LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('||(jsonb,jsonb)') THEN $1 OPERATOR(pg_catalog.||) $2 END $$;
CREATE OPERATOR public.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = public.tr_cat);
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('now()') THEN pg_catalog.now() END $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('clock_timestamp()') THEN pg_catalog.clock_timestamp() END $$;
CREATE FUNCTION public.to_timestamp(float8) RETURNS timestamptz LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('to_timestamp(float8)') THEN pg_catalog.to_timestamp($1) END $$;
CREATE FUNCTION public.format(text, text, text) RETURNS text LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('format(text,text,text)') THEN pg_catalog.format($1, $2, $3) END $$;
CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('current_setting(text)') THEN pg_catalog.current_setting($1) END $$;
CREATE FUNCTION :"bootstrap".now() RETURNS timestamptz LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('$user.now()') THEN pg_catalog.now() END $$;
CREATE FUNCTION :"bootstrap".tr_div(float8, numeric) RETURNS float8 LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('$user./(float8,numeric)') THEN $1 OPERATOR(pg_catalog./) $2::float8 END $$;
CREATE OPERATOR :"bootstrap"./ (LEFTARG = float8, RIGHTARG = numeric, FUNCTION = :"bootstrap".tr_div);
RESET ROLE;
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET search_path = "$user", public, pg_catalog;
-- The scheduler reads the database's settings when it connects: start a new one.
SELECT pg_terminate_backend(pid) IS NOT NULL AS restarted FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'matviews scheduler';
SELECT mvtest_wait_for($$SELECT count(*) = 1 FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'matviews scheduler'$$, '60 s') AS scheduler_back;

-- Alice's view, scheduled, queued and refreshed through the worker while the traps are set.
CREATE TABLE public.tr_src (id int PRIMARY KEY, grp int);
INSERT INTO public.tr_src SELECT g, g % 3 FROM generate_series(1, 30) g;
GRANT SELECT ON public.tr_src TO tr_alice;
SET ROLE tr_alice;
SELECT r->>'status' AS status
FROM matviews.create('tr_mv', 'SELECT grp, count(*) AS n FROM public.tr_src GROUP BY grp',
                     refresh_strategy => 'concurrent', unique_index_columns => ARRAY['grp'],
                     schedule => '1 second') r;
SELECT (r->>'run_id')::bigint AS queued FROM matviews.enqueue('tr_mv') r \gset
RESET ROLE;
SELECT r->>'status' AS status FROM matviews.wait(:queued, '60 seconds') r;
SELECT mvtest_wait_for($$SELECT count(*) >= 2 FROM matviews.runs
    WHERE view = 'public.tr_mv' AND trigger = 'schedule' AND status = 'success'$$, '60 s') AS scheduled_runs;
-- What the jobs ran ran as alice; nothing of matviews' own SQL ever reached a trap.
SELECT fired_as, superuser, what FROM tr_log ORDER BY 1, 3;
SELECT count(*) AS traps_fired_as_superuser FROM tr_log WHERE superuser;
SELECT r->>'status' AS status FROM matviews.unschedule('tr_mv') r;
ALTER DATABASE :"db" RESET search_path;

-- 2. A superuser's swap of alice's view runs alice's code (index expressions and predicates,
-- the query, ANALYZE) as alice, never as the superuser: directly, through refresh's swap
-- strategy, and through a cascade into a swap-managed dependent.
TRUNCATE tr_log;
SET ROLE tr_alice;
CREATE FUNCTION tr_alice_key(int) RETURNS int LANGUAGE sql IMMUTABLE AS
    $$ SELECT CASE WHEN public.tr_note('index expression') THEN $1 END $$;
CREATE FUNCTION tr_alice_pred(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS
    $$ SELECT public.tr_note('index predicate') AND $1 IS NOT NULL $$;
SELECT r->>'status' AS status
FROM matviews.create('tr_swap', 'SELECT id, grp FROM public.tr_src', refresh_strategy => 'swap') r;
CREATE INDEX tr_swap_expr ON tr_swap (tr_alice_key(id));
CREATE INDEX tr_swap_pred ON tr_swap (id) WHERE tr_alice_pred(1);
SELECT r->>'status' AS status
FROM matviews.create('tr_swap_dep', 'SELECT grp, count(*) AS n FROM public.tr_swap GROUP BY grp',
                     refresh_strategy => 'swap') r;
CREATE INDEX tr_swap_dep_expr ON tr_swap_dep (tr_alice_key(grp));
RESET ROLE;
TRUNCATE tr_log;
SELECT r->>'status' AS status FROM matviews.swap('tr_swap') r;
SELECT r->>'status' AS status FROM matviews.refresh('tr_swap') r;
SELECT r->>'status' AS status, r->'response'->'cascade'->0->>'status' AS dependent
FROM matviews.refresh('tr_swap', strategy => 'regular', cascade => true) r;
SELECT r->>'status' AS status FROM matviews.refresh('tr_swap_dep') r;
SELECT DISTINCT fired_as, superuser FROM tr_log ORDER BY 1;
SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'tr_swap'::regclass;

-- 2b. A swap never reads the view's query again under another search_path: a superuser's view
-- and an adopted view of alice's (stored search_path '') call array_length(anyarray, int); an
-- exact-type overload mallory planted in public would win if the printed query were parsed under
-- the caller's or the database's path, and run as the view's owner.
SET ROLE tr_mallory;
CREATE FUNCTION public.array_length(int[], int) RETURNS int LANGUAGE sql AS
    $$ SELECT CASE WHEN public.tr_note('planted array_length') THEN 42 END $$;
RESET ROLE;
CREATE TABLE public.tr_arr (a int[]);
INSERT INTO public.tr_arr VALUES ('{1,2,3}');
GRANT SELECT ON public.tr_arr TO tr_alice;
SELECT r->>'status' AS status
FROM matviews.create('public.tr_len', 'SELECT pg_catalog.array_length(a, 1) AS n FROM public.tr_arr',
                     refresh_strategy => 'swap') r;
SET ROLE tr_alice;
CREATE MATERIALIZED VIEW public.tr_len_adopted AS SELECT pg_catalog.array_length(a, 1) AS n FROM public.tr_arr;
SELECT r->>'status' AS status FROM matviews.adopt('public.tr_len_adopted', refresh_strategy => 'swap') r;
RESET ROLE;
TRUNCATE tr_log;
SELECT r->>'status' AS status FROM matviews.refresh('public.tr_len') r;
SELECT r->>'status' AS status FROM matviews.swap('public.tr_len_adopted') r;
SELECT (SELECT n FROM public.tr_len) AS n, (SELECT n FROM public.tr_len_adopted) AS n_adopted,
       (SELECT count(*) FROM tr_log) AS planted_calls;
SELECT r->>'status' AS status FROM matviews.delete('public.tr_len') r;
SELECT r->>'status' AS status FROM matviews.delete('public.tr_len_adopted') r;
DROP FUNCTION public.array_length(int[], int);
DROP TABLE public.tr_arr;

-- 2c. DDL is followed for the objects it names only: ALTER INDEX ... RENAME of a materialized
-- view is followed too (isolation spec ddl_no_wait: another role's DDL never waits for it).
SET ROLE tr_alice;
SELECT r->>'status' AS status FROM matviews.create('public.tr_idx_named', 'SELECT 1 AS x') r;
ALTER INDEX public.tr_idx_named RENAME TO tr_idx_renamed;
SELECT view_name FROM matviews.definitions WHERE relid = 'public.tr_idx_renamed'::regclass;
SELECT r->>'status' AS status FROM matviews.delete('public.tr_idx_renamed') r;
RESET ROLE;

-- 2d. The extension's schema must belong to its owner: a database owner's schema named
-- matviews, made in advance, is refused (42501).
CREATE DATABASE tr_other OWNER tr_mallory;
\c tr_other
SET ROLE tr_mallory;
CREATE SCHEMA matviews;
RESET ROLE;
\set VERBOSITY sqlstate
CREATE EXTENSION matviews;
\set VERBOSITY default
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'matviews';
\c contrib_regression
SET client_min_messages = warning;
DROP DATABASE tr_other;

-- 3. Identity is the OID. RENAME and SET SCHEMA are followed; a plain DROP removes the
-- definition and cancels queued runs; a view that takes the name later is not bound to anything.
SET ROLE tr_alice;
SELECT r->>'status' AS status FROM matviews.create('tr_named', 'SELECT 1 AS x', schedule => '1 hour') r;
SELECT (r->>'run_id')::bigint AS named_run
FROM matviews.enqueue('tr_named', run_at => now() + interval '1 hour') r \gset
ALTER MATERIALIZED VIEW tr_named RENAME TO tr_renamed;
SELECT view, exists, schedule FROM matviews.status WHERE view LIKE 'public.tr_%named' ORDER BY 1;
SELECT schema_name, view_name FROM matviews.definitions WHERE view_name LIKE 'tr_%named';
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.refresh('tr_renamed') r;
RESET ROLE;
CREATE SCHEMA tr_other;
GRANT USAGE, CREATE ON SCHEMA tr_other TO tr_alice, tr_mallory;
ALTER MATERIALIZED VIEW tr_renamed SET SCHEMA tr_other;
SELECT view, exists FROM matviews.status WHERE view LIKE '%tr_renamed';
-- The queued run moved with it.
SELECT relid::text AS bound_to FROM matviews.runs WHERE id = :named_run;
-- Mallory takes the old name: nothing of alice's binds to her view.
SET ROLE tr_mallory;
CREATE MATERIALIZED VIEW public.tr_named AS SELECT 2 AS x;
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy FROM matviews.refresh('tr_named') r;
SELECT count(*) AS visible_to_mallory FROM matviews.definitions;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.schedule('tr_named', '1 minute') r;
RESET ROLE;
SELECT count(*) AS bound_to_mallorys_view FROM matviews.definitions WHERE relid = 'public.tr_named'::regclass;
-- Alice drops her view with plain SQL: the definition goes, the queued run is cancelled, and
-- mallory creating a view of that name in that schema binds nothing either.
SET ROLE tr_alice;
DROP MATERIALIZED VIEW tr_other.tr_renamed;
RESET ROLE;
SELECT count(*) AS definitions FROM matviews.definitions WHERE view_name = 'tr_renamed';
SELECT status, error->>'message' AS message FROM matviews.runs WHERE id = :named_run;
SET ROLE tr_mallory;
CREATE MATERIALIZED VIEW tr_other.tr_renamed AS SELECT 3 AS x;
RESET ROLE;
SELECT count(*) AS managed FROM matviews.status WHERE view = 'tr_other.tr_renamed';
-- A definition kept by delete(keep_definition) stays detached: only its owner re-creates it.
SET ROLE tr_alice;
SELECT r->>'status' AS status FROM matviews.create('tr_kept', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status FROM matviews.delete('tr_kept', keep_definition => true) r;
RESET ROLE;
SET ROLE tr_mallory;
CREATE MATERIALIZED VIEW public.tr_kept AS SELECT 'mallory' AS x;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('tr_kept', 'SELECT 2 AS x', force => true) r;
RESET ROLE;
SELECT view, exists FROM matviews.status WHERE view = 'public.tr_kept';
SELECT x FROM public.tr_kept;

-- 5. Swap reads what it carries over under its lock (see the isolation spec swap_capture); here,
-- the grants after a REVOKE are exactly the current ones.
SET ROLE tr_alice;
GRANT SELECT ON tr_swap TO tr_bob;
REVOKE SELECT ON tr_swap FROM tr_bob;
SELECT r->>'status' AS status FROM matviews.swap('tr_swap') r;
RESET ROLE;
SELECT has_table_privilege('tr_bob', 'tr_swap', 'SELECT') AS bob_may_read;

-- 6. A refused call changes nothing of the owner's: no run of alice's, no status, no failures.
SELECT last_status, consecutive_failures FROM matviews.status WHERE view = 'public.tr_mv';
SET ROLE tr_bob;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.refresh('tr_mv') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.swap('tr_mv') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.alter('tr_mv', enabled => false) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.enqueue('tr_mv') r;
-- Bob sees his own refused runs, recorded for him alone.
SELECT view, operation, status, definition_id, owner FROM matviews.runs ORDER BY id;
RESET ROLE;
SELECT last_status, consecutive_failures FROM matviews.status WHERE view = 'public.tr_mv';
SET ROLE tr_alice;
SELECT count(*) AS alice_sees_bobs_runs FROM matviews.runs WHERE role = 'tr_bob';
RESET ROLE;

-- 7. A cancel or the session's statement_timeout is raised as PostgreSQL raises it, and ends the
-- statement; only a per-view statement_timeout is an error response.
CREATE FUNCTION public.tr_slow() RETURNS int LANGUAGE sql AS $$ SELECT 1 FROM pg_sleep(0.5) $$;
SELECT r->>'status' AS status FROM matviews.create('public.tr_slow_mv', 'SELECT public.tr_slow() AS x') r;
SET statement_timeout = '100ms';
SELECT matviews.refresh('tr_slow_mv');
SELECT matviews.refresh(v) FROM (VALUES ('tr_slow_mv'), ('tr_slow_mv'), ('tr_slow_mv')) AS l(v);
RESET statement_timeout;
SELECT count(*) AS runs_recorded FROM matviews.runs WHERE view = 'public.tr_slow_mv' AND operation = 'refresh';
SELECT r->>'status' AS status FROM matviews.alter('tr_slow_mv', options => '{"statement_timeout": "100ms"}') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.refresh('tr_slow_mv') r;

-- 8. run_at must be finite.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.enqueue('tr_mv', run_at => '-infinity') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.enqueue('tr_mv', run_at => 'infinity') r;

-- Clean up.
SELECT r->>'status' AS status FROM matviews.delete('tr_slow_mv') r;
SELECT r->>'status' AS status FROM matviews.delete('tr_swap', cascade => true) r;
SELECT r->>'status' AS status FROM matviews.delete('tr_mv') r;
SELECT r->>'status' AS status FROM matviews.delete('tr_kept') r;
DROP MATERIALIZED VIEW public.tr_named, tr_other.tr_renamed;
DROP SCHEMA tr_other;
DROP SCHEMA :"bootstrap" CASCADE;
DROP OPERATOR public./ (float8, numeric);
DROP OPERATOR public.= (bigint, bigint);
DROP OPERATOR public.= (text, text);
DROP OPERATOR public.|| (jsonb, jsonb);
DROP FUNCTION public.tr_div(float8, numeric), public.tr_eq8(bigint, bigint), public.tr_eqt(text, text),
    public.tr_cat(jsonb, jsonb), public.now(), public.clock_timestamp(), public.to_timestamp(float8),
    public.format(text, text, text), public.current_setting(text), tr_alice_key(int), tr_alice_pred(int),
    tr_slow(), tr_note(text);
DROP TABLE public.tr_log, public.tr_src;
REVOKE CREATE ON SCHEMA public FROM tr_mallory, tr_alice;
DROP ROLE tr_mallory, tr_alice, tr_bob;
