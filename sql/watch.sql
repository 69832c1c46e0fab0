-- Refresh on change (SPEC §5, matviews.watch / unwatch): the statement triggers a watch puts on
-- every table its view reads (through plain views, partitions and other managed views), a
-- committed write marks the view stale and the worker refreshes it with the view's own strategy
-- (trigger 'watch'); a rolled-back write causes nothing; the status columns; the lifecycle
-- (unwatch, delete, plain DROP, DDL on a base table, swap, new partitions, a replaced view); the
-- cascade to a watch over another managed view; a writer needs no privilege on matviews.*; and
-- every error. Every wait is on a real condition (wt_wait_for, wt_settle).

CREATE FUNCTION wt_sqlstate(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
-- Polls a boolean query until it is true or 30 seconds pass, committing between polls: a
-- refresh needs the reader's lock on the view released (a function would keep it to the end).
CREATE PROCEDURE wt_wait_for(INOUT label text, q text) LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '30 seconds';
    ok boolean;
BEGIN
    LOOP
        EXECUTE q INTO ok;
        COMMIT;
        EXIT WHEN ok OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.02);
    END LOOP;
    label := label || ': ' || coalesce(ok, false);
END $$;
-- Settles the worker: commits a write to the sentinel's table and waits until the sentinel
-- view has it and no enabled watched view is stale or has a watch run due. The worker takes in
-- every commit made before the sentinel's in the same round, or an earlier one, so afterwards
-- everything committed before the call has been refreshed, or is known to cause nothing.
CREATE PROCEDURE wt_settle(INOUT label text) LANGUAGE plpgsql AS $$
DECLARE
    want bigint;
BEGIN
    INSERT INTO wt_sentinel VALUES (1);
    SELECT count(*) INTO want FROM wt_sentinel;
    COMMIT;
    CALL wt_wait_for(label, format($q$
        SELECT (SELECT n FROM wt_sentinel_mv) = %s
           AND NOT EXISTS (SELECT 1 FROM matviews.status s WHERE watched AND enabled AND stale
                           AND NOT EXISTS (SELECT 1 FROM matviews.runs q
                                           WHERE q.definition_id = s.definition_id
                                             AND q.trigger = 'watch' AND q.status = 'queued'))
           AND NOT EXISTS (SELECT 1 FROM matviews.runs WHERE trigger = 'watch'
                           AND status IN ('queued', 'running')
                           AND coalesce(run_at, now()) < now() + interval '1 minute')$q$, want));
END $$;
-- The error of a response, without what changes from run to run.
CREATE FUNCTION wt_error(r jsonb) RETURNS TABLE (status text, sqlstate text, message text, hint text)
LANGUAGE sql AS $$
    SELECT r->>'status', r->'error'->>'sqlstate', r->'error'->>'message', r->'error'->>'hint'
$$;
-- Watch runs that refreshed a view.
CREATE FUNCTION wt_watch_runs(v text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM matviews.runs
    WHERE view = v AND trigger = 'watch' AND status = 'success'
$$;
-- Watch runs of a view that have not ended.
CREATE FUNCTION wt_unfinished(v text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM matviews.runs
    WHERE view = v AND trigger = 'watch' AND status IN ('queued', 'running')
$$;

-- The sentinel (wt_settle): a watched view on a table of its own.
CREATE TABLE wt_sentinel (i int);
SELECT r->>'status' AS status FROM matviews.create('wt_sentinel_mv', 'SELECT count(*) AS n FROM wt_sentinel') r;
SELECT r->>'status' AS status FROM matviews.watch('wt_sentinel_mv', '0') r;
CALL wt_settle('sentinel_ready');

-- The seeds' notification preferences: a user's preference per notification type, and the
-- view of who gets what (a plain view in between, as applications have).
CREATE TABLE wt_users (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE wt_prefs (user_id int NOT NULL REFERENCES wt_users, kind text NOT NULL,
                       enabled boolean NOT NULL, PRIMARY KEY (user_id, kind));
INSERT INTO wt_users SELECT g, 'user ' || g FROM generate_series(1, 20) g;
INSERT INTO wt_prefs SELECT g, k, true FROM generate_series(1, 20) g,
    unnest('{email,push}'::text[]) k;
CREATE VIEW wt_enabled AS
    SELECT u.id, u.name, p.kind FROM wt_users u JOIN wt_prefs p ON p.user_id = u.id
    WHERE p.enabled;
SELECT r->>'status' AS status FROM matviews.create('wt_recipients',
    'SELECT kind, count(*) AS users FROM wt_enabled GROUP BY kind',
    refresh_strategy => 'concurrent', unique_index_columns => '{kind}') r;

-- watch: every base table, found through the plain view, gets matviews' statement trigger.
SELECT r->>'status' AS status, r->'response'->>'min_interval' AS min_interval,
       r->'response'->'sources' AS sources, r->'response'->>'triggers_created' AS created,
       r->'response' ? 'warning' AS warned
FROM matviews.watch('wt_recipients', min_interval => '0') r;
SELECT tgrelid::regclass AS table_name, tgfoid::regprocedure AS function, tgenabled,
       tgtype
FROM pg_trigger WHERE tgname = 'matviews_watch' ORDER BY 1::text;
-- A new watch starts stale (what changed before it is unknown): the worker refreshes it once.
CALL wt_wait_for('refreshed_once', $$SELECT wt_watch_runs('public.wt_recipients') = 1
                          AND NOT stale FROM matviews.status
                          WHERE view = 'public.wt_recipients'$$);
SELECT watched, stale, stale_since, pending_changes, watch_min_interval, last_status
FROM matviews.status WHERE view = 'public.wt_recipients';
SELECT strategy, trigger, status, owner = current_user AS as_owner FROM matviews.runs
WHERE view = 'public.wt_recipients' AND trigger = 'watch';

-- A preference changes: the view follows, by a watch run with the view's own strategy.
UPDATE wt_prefs SET enabled = false WHERE user_id <= 5 AND kind = 'push';
CALL wt_wait_for('followed', $$SELECT users = 15 FROM wt_recipients WHERE kind = 'push'$$);
CALL wt_wait_for('fresh', $$SELECT NOT stale AND pending_changes = 0 AND stale_since IS NULL
                          FROM matviews.status WHERE view = 'public.wt_recipients'$$);
SELECT strategy, status FROM matviews.runs
WHERE view = 'public.wt_recipients' AND trigger = 'watch' ORDER BY id DESC LIMIT 1;
-- INSERT, DELETE and TRUNCATE count too; the other table of the join as well.
INSERT INTO wt_users VALUES (21, 'user 21');
INSERT INTO wt_prefs VALUES (21, 'email', true);
CALL wt_wait_for('inserted', $$SELECT users = 21 FROM wt_recipients WHERE kind = 'email'$$);
DELETE FROM wt_prefs WHERE user_id = 21;
CALL wt_wait_for('deleted', $$SELECT users = 20 FROM wt_recipients WHERE kind = 'email'$$);
UPDATE wt_users SET name = 'renamed' WHERE id = 1;  -- the view does not change, but is refreshed
CALL wt_settle('settled');


-- A rolled-back write, a rolled-back subtransaction and a write that deleted nothing but then
-- rolled back cause no refresh; a committed write after them in the same session still does.
SELECT wt_watch_runs('public.wt_recipients') AS runs_before \gset
BEGIN;
UPDATE wt_prefs SET enabled = false;
ROLLBACK;
BEGIN;
SAVEPOINT s;
DELETE FROM wt_prefs;
ROLLBACK TO SAVEPOINT s;
COMMIT;
CALL wt_settle('settled');
SELECT wt_watch_runs('public.wt_recipients') - :runs_before AS refreshes_after_rollbacks,
       wt_unfinished('public.wt_recipients') AS unfinished, stale
FROM matviews.status WHERE view = 'public.wt_recipients';
-- A released savepoint's write counts at commit.
BEGIN;
SAVEPOINT s;
UPDATE wt_prefs SET enabled = true WHERE user_id = 1;
RELEASE SAVEPOINT s;
COMMIT;
CALL wt_wait_for('released_counts', $$SELECT users = 16 FROM wt_recipients WHERE kind = 'push'$$);

-- pending_changes counts statements (not rows) since the last refresh, and stale_since is the
-- first unrefreshed commit. A disabled definition is marked but not refreshed, so they add up.
SELECT r->>'status' AS status FROM matviews.alter('wt_recipients', enabled => false) r;
SELECT now() AS before_writes \gset
UPDATE wt_prefs SET enabled = true WHERE user_id = 2;
UPDATE wt_prefs SET enabled = true WHERE user_id IN (3, 4);
CALL wt_settle('settled');
SELECT stale, pending_changes, stale_since >= :'before_writes' AS since_first_write,
       wt_unfinished('public.wt_recipients') AS unfinished
FROM matviews.status WHERE view = 'public.wt_recipients';
-- A refresh of any kind takes the marks it saw; enabling again finds nothing left to do.
SELECT r->>'status' AS status FROM matviews.refresh('wt_recipients') r;
SELECT stale, pending_changes, stale_since FROM matviews.status WHERE view = 'public.wt_recipients';
SELECT r->>'status' AS status FROM matviews.alter('wt_recipients', enabled => true) r;

-- A writer needs no privilege on matviews.*: not even EXECUTE on the trigger function.
CREATE ROLE wt_writer;
GRANT UPDATE, SELECT ON wt_prefs TO wt_writer;
REVOKE EXECUTE ON FUNCTION matviews._on_change() FROM PUBLIC;
SET ROLE wt_writer;
UPDATE wt_prefs SET enabled = false WHERE user_id = 6 AND kind = 'push';
SELECT wt_sqlstate('SELECT matviews._on_change()') AS call_directly;
RESET ROLE;
CALL wt_wait_for('writer_followed', $$SELECT users = 18 FROM wt_recipients WHERE kind = 'push'$$);
GRANT EXECUTE ON FUNCTION matviews._on_change() TO PUBLIC;
-- Called as anything but a trigger, the function refuses.
SELECT wt_sqlstate('SELECT matviews._on_change()') AS not_a_trigger;

-- DDL on a watched base table keeps the watch working: a new column, a renamed column, a
-- renamed table (the trigger goes with it).
ALTER TABLE wt_prefs ADD COLUMN note text;
ALTER TABLE wt_users RENAME COLUMN name TO full_name;
ALTER TABLE wt_prefs RENAME TO wt_preferences;
UPDATE wt_preferences SET enabled = false WHERE user_id = 7 AND kind = 'push';
CALL wt_wait_for('after_ddl', $$SELECT users = 17 FROM wt_recipients WHERE kind = 'push'$$);
ALTER TABLE wt_preferences RENAME TO wt_prefs;

-- Two-phase commit of a write to a watched table is refused (the commit may happen in another
-- session, which would never tell the worker).
BEGIN;
UPDATE wt_prefs SET enabled = true WHERE user_id = 7;
PREPARE TRANSACTION 'wt_2pc';
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'wt_2pc';

-- Re-watching changes min_interval; the response says what it was.
CALL wt_settle('settled');
SELECT r->>'status' AS status, r->'response'->>'previous_min_interval' AS previous,
       r->'response'->>'min_interval' AS min_interval, r->'response'->>'triggers_created' AS created
FROM matviews.watch('wt_recipients', '1 hour') r;
SELECT watch_min_interval FROM matviews.status WHERE view = 'public.wt_recipients';
-- min_interval is honoured: the new watch starts stale, and its run is due an hour after the
-- last watch run started; a change meanwhile joins that run rather than queueing another.
CALL wt_wait_for('queued', $$SELECT wt_unfinished('public.wt_recipients') = 1$$);
UPDATE wt_prefs SET enabled = true WHERE user_id = 8;
CALL wt_settle('settled');
SELECT count(*) AS queued,
       min(run_at) - (SELECT max(started_at) FROM matviews.runs WHERE view = 'public.wt_recipients'
                      AND trigger = 'watch' AND status <> 'queued') >= interval '1 hour' AS waits_an_hour
FROM matviews.runs WHERE view = 'public.wt_recipients' AND trigger = 'watch' AND status = 'queued';
-- A manual refresh meanwhile takes in the changes: the view is no longer stale, and the queued
-- watch run would find it fresh and be skipped (here it is cancelled, rather than waited for).
SELECT r->>'status' AS status FROM matviews.refresh('wt_recipients') r;
SELECT stale, pending_changes FROM matviews.status WHERE view = 'public.wt_recipients';
SELECT (matviews.cancel(id))->>'status' AS cancelled FROM matviews.runs
WHERE view = 'public.wt_recipients' AND trigger = 'watch' AND status = 'queued';
SELECT r->>'status' AS status FROM matviews.watch('wt_recipients', '0') r;
CALL wt_settle('settled');

-- Partitions: the parent and every partition get the trigger (a write to a partition fires
-- only its own), and so does a partition created or attached later.
CREATE TABLE wt_events (day date NOT NULL, n int NOT NULL) PARTITION BY RANGE (day);
CREATE TABLE wt_events_2026 PARTITION OF wt_events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT r->>'status' AS status FROM matviews.create('wt_daily',
    'SELECT day, sum(n) AS n FROM wt_events GROUP BY day', refresh_strategy => 'swap') r;
SELECT r->>'status' AS status, r->'response'->'sources' AS sources
FROM matviews.watch('wt_daily', '0') r;
CREATE TABLE wt_events_2027 PARTITION OF wt_events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
CREATE TABLE wt_events_2028 (LIKE wt_events);
ALTER TABLE wt_events ATTACH PARTITION wt_events_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
-- The worker follows the watch's sources again, as the view's owner (never in the DDL's own
-- transaction, nor with the rights of whoever ran it).
CALL wt_wait_for('partitions_followed', $$SELECT count(*) = 4 FROM pg_trigger
                 WHERE tgname = 'matviews_watch' AND tgrelid::regclass::text LIKE 'wt_events%'$$);
SELECT tgrelid::regclass AS table_name FROM pg_trigger
WHERE tgname = 'matviews_watch' AND tgrelid::regclass::text LIKE 'wt_events%' ORDER BY 1::text;
CALL wt_settle('settled');
INSERT INTO wt_events_2027 VALUES ('2027-03-01', 5);  -- straight into a new partition
CALL wt_wait_for('partition_followed', $$SELECT n = 5 FROM wt_daily WHERE day = '2027-03-01'$$);
-- A swap gives the view a new OID: the watch follows it, and the swap itself marks the views
-- that watch this one.
CALL wt_settle('settled');
SELECT r->>'status' AS status FROM matviews.swap('wt_daily') r;
INSERT INTO wt_events VALUES ('2028-05-01', 7);
CALL wt_wait_for('after_swap', $$SELECT n = 7 FROM wt_daily WHERE day = '2028-05-01'$$);
SELECT strategy FROM matviews.runs WHERE view = 'public.wt_daily' AND trigger = 'watch'
ORDER BY id DESC LIMIT 1;
-- TRUNCATE marks the view stale too.
TRUNCATE wt_events;
CALL wt_wait_for('truncated', $$SELECT count(*) = 0 FROM wt_daily$$);

-- Cascade: a watched view over another managed view is refreshed after that view's refresh
-- commits (a matviews refresh, a swap, or a plain REFRESH).
CREATE TABLE wt_up_src (i int);
INSERT INTO wt_up_src VALUES (1), (2);
SELECT r->>'status' AS status FROM matviews.create('wt_upstream', 'SELECT count(*) AS n FROM wt_up_src') r;
SELECT r->>'status' AS status FROM matviews.create('wt_downstream', 'SELECT n * 10 AS n10 FROM wt_upstream') r;
SELECT r->>'status' AS status, r->'response'->'sources' AS sources
FROM matviews.watch('wt_downstream', '0') r;
CALL wt_settle('settled');
INSERT INTO wt_up_src VALUES (3);
CALL wt_settle('settled');
SELECT n10 FROM wt_downstream;  -- the upstream view was not refreshed: nothing to follow yet
SELECT r->>'status' AS status FROM matviews.refresh('wt_upstream') r;
CALL wt_wait_for('cascaded', $$SELECT n10 = 30 FROM wt_downstream$$);
INSERT INTO wt_up_src VALUES (4);
REFRESH MATERIALIZED VIEW wt_upstream;
CALL wt_wait_for('cascaded_plain_refresh', $$SELECT n10 = 40 FROM wt_downstream$$);
INSERT INTO wt_up_src VALUES (5);
SELECT r->>'status' AS status FROM matviews.swap('wt_upstream') r;
CALL wt_wait_for('cascaded_swap', $$SELECT n10 = 50 FROM wt_downstream$$);

-- A replaced plain view under a watched view is followed: its new tables get the trigger.
-- Nothing is done in the DDL's own transaction, nor as its role: inside it, no trigger yet.
CREATE TABLE wt_extra (user_id int, kind text);
BEGIN;
CREATE OR REPLACE VIEW wt_enabled AS
    SELECT u.id, u.full_name AS name, p.kind FROM wt_users u JOIN wt_prefs p ON p.user_id = u.id
    WHERE p.enabled
    UNION ALL SELECT e.user_id, 'extra', e.kind FROM wt_extra e;
SELECT count(*) AS trigger_in_ddl_transaction FROM pg_trigger WHERE tgrelid = 'wt_extra'::regclass;
COMMIT;
CALL wt_wait_for('replaced_view_followed', $$SELECT count(*) = 1 FROM pg_trigger
                 WHERE tgname = 'matviews_watch' AND tgrelid = 'wt_extra'::regclass$$);
CALL wt_settle('settled');
SELECT r->>'status' AS status FROM matviews.refresh('wt_recipients') r;
INSERT INTO wt_extra VALUES (1, 'sms');
CALL wt_wait_for('extra_row_followed', $$SELECT users = 1 FROM wt_recipients WHERE kind = 'sms'$$);

-- Errors. The name: unknown (42P01), not a materialized view (42809), not managed (42704).
SELECT * FROM wt_error(matviews.watch('wt_missing'));
SELECT * FROM wt_error(matviews.watch('wt_prefs'));
CREATE MATERIALIZED VIEW wt_unmanaged AS SELECT 1 AS x;
SELECT * FROM wt_error(matviews.watch('wt_unmanaged'));
SELECT * FROM wt_error(matviews.unwatch('wt_unmanaged'));
SELECT * FROM wt_error(matviews.unwatch('wt_missing'));
-- min_interval: not an interval, negative (22023), null (22004).
SELECT * FROM wt_error(matviews.watch('wt_sentinel_mv', 'soon'));
SELECT * FROM wt_error(matviews.watch('wt_sentinel_mv', '-1 second'));
SELECT * FROM wt_error(matviews.watch('wt_sentinel_mv', NULL));
SELECT * FROM wt_error(matviews.watch(NULL));
-- Not the owner (42501): nothing changes, and the run is the caller's alone.
CREATE ROLE wt_other;
SET ROLE wt_other;
SELECT * FROM wt_error(matviews.watch('wt_recipients', '5 seconds'));
SELECT * FROM wt_error(matviews.unwatch('wt_recipients'));
RESET ROLE;
SELECT watch_min_interval FROM matviews.status WHERE view = 'public.wt_recipients';
SELECT count(*) AS recorded_against_owner FROM matviews.runs
WHERE role = 'wt_other' AND definition_id IS NOT NULL;
-- The owner lacks TRIGGER on a table the view reads (42501, with the GRANT to run); nothing
-- is created.
CREATE ROLE wt_owner;
CREATE TABLE wt_theirs (i int);
GRANT SELECT ON wt_theirs TO wt_owner;
GRANT CREATE ON SCHEMA public TO wt_owner;
SET ROLE wt_owner;
SELECT r->>'status' AS status FROM matviews.create('wt_owned', 'SELECT count(*) AS n FROM wt_theirs') r;
SELECT * FROM wt_error(matviews.watch('wt_owned'));
RESET ROLE;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'wt_theirs'::regclass;
SELECT watched FROM matviews.status WHERE view = 'public.wt_owned';
-- With TRIGGER granted, the owner's watch works; the trigger is created as the owner (a
-- superuser calling watch gets no more than the owner could).
GRANT TRIGGER ON wt_theirs TO wt_owner;
SELECT r->>'status' AS status FROM matviews.watch('wt_owned') r;
SELECT r->>'status' AS status FROM matviews.unwatch('wt_owned') r;
REVOKE TRIGGER ON wt_theirs FROM wt_owner;
SELECT * FROM wt_error(matviews.watch('wt_owned'));
-- A trigger named matviews_watch that is not matviews' own (42710).
CREATE FUNCTION wt_noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TABLE wt_clash (i int);
CREATE TRIGGER matviews_watch AFTER INSERT ON wt_clash FOR EACH STATEMENT EXECUTE FUNCTION wt_noop();
SELECT r->>'status' AS status FROM matviews.create('wt_clash_mv', 'SELECT count(*) AS n FROM wt_clash') r;
SELECT * FROM wt_error(matviews.watch('wt_clash_mv'));
-- Tables whose changes fire no trigger here: a system catalog, a foreign table (0A000).
SELECT r->>'status' AS status FROM matviews.create('wt_catalog', 'SELECT count(*) AS n FROM pg_catalog.pg_class') r;
SELECT * FROM wt_error(matviews.watch('wt_catalog'));
SELECT r->>'status' AS status FROM matviews.create('wt_own_tables', 'SELECT count(*) AS n FROM matviews.runs') r;
SELECT * FROM wt_error(matviews.watch('wt_own_tables'));
CREATE FOREIGN DATA WRAPPER wt_fdw;
CREATE SERVER wt_server FOREIGN DATA WRAPPER wt_fdw;
CREATE FOREIGN TABLE wt_foreign (i int) SERVER wt_server;
SELECT r->>'status' AS status FROM matviews.create('wt_foreign_mv', 'SELECT i FROM wt_foreign', with_data => false) r;
SELECT * FROM wt_error(matviews.watch('wt_foreign_mv'));
-- Refused calls changed nothing: no trigger on the foreign table's neighbours, no watch.
SELECT view FROM matviews.status WHERE watched ORDER BY view;

-- A hostile role with CREATE on a schema plants matviews_watch triggers calling matviews'
-- function: on a security_invoker view over pg_authid (were the collector to lock it as the
-- extension's owner, it would lock pg_authid), and on a table of its own. The worker's collector
-- handles tables only, each locked by OID and dropped as the table's owner: the planted table
-- trigger goes, the view and pg_authid are never touched.
CREATE ROLE wt_hostile;
CREATE SCHEMA wt_h AUTHORIZATION wt_hostile;
SET ROLE wt_hostile;
CREATE TABLE wt_h.own (i int);
CREATE VIEW wt_h.lockme WITH (security_invoker = true) AS SELECT rolname FROM pg_catalog.pg_authid;
CREATE TRIGGER matviews_watch INSTEAD OF INSERT ON wt_h.lockme
    FOR EACH ROW EXECUTE FUNCTION matviews._on_change();
CREATE TRIGGER matviews_watch AFTER INSERT ON wt_h.own
    FOR EACH STATEMENT EXECUTE FUNCTION matviews._on_change();
RESET ROLE;

-- unwatch: the watch ends, and the worker drops the triggers no other watch needs (each only
-- when its table is free at that moment); a second unwatch is skipped.
CALL wt_settle('settled');
SELECT r->>'status' AS status, r->'response'->>'previous_min_interval' AS previous
FROM matviews.unwatch('wt_recipients') r;
SELECT r->>'status' AS status, r->'response'->>'reason' AS reason FROM matviews.unwatch('wt_recipients') r;
SELECT watched, stale, stale_since, pending_changes FROM matviews.status WHERE view = 'public.wt_recipients';
CALL wt_wait_for('unused_triggers_dropped', $$SELECT count(*) = 0 FROM pg_trigger
                 WHERE tgname = 'matviews_watch'
                   AND tgrelid IN ('wt_users'::regclass, 'wt_prefs'::regclass, 'wt_extra'::regclass)$$);
CALL wt_wait_for('planted_table_trigger_dropped', $$SELECT count(*) = 0 FROM pg_trigger
                 WHERE tgrelid = 'wt_h.own'::regclass$$);
SELECT count(*) AS view_trigger_untouched FROM pg_trigger WHERE tgrelid = 'wt_h.lockme'::regclass;
SELECT count(*) AS pg_authid_locks FROM pg_locks
WHERE relation = 'pg_catalog.pg_authid'::regclass AND mode = 'AccessExclusiveLock';
DROP SCHEMA wt_h CASCADE;
DROP ROLE wt_hostile;
SELECT tgrelid::regclass AS still_triggered FROM pg_trigger
WHERE tgname = 'matviews_watch' AND tgfoid = 'matviews._on_change()'::regprocedure ORDER BY 1::text;
-- delete removes the watch with the definition, and a plain DROP too (the worker then drops
-- the triggers nobody needs).
CALL wt_settle('settled');
SELECT r->>'status' AS status FROM matviews.delete('wt_downstream') r;
SELECT r->>'status' AS status FROM matviews.delete('wt_upstream') r;
SELECT r->>'status' AS status FROM matviews.delete('wt_daily') r;
DROP MATERIALIZED VIEW wt_sentinel_mv;
SELECT count(*) AS definitions FROM matviews.definitions WHERE view_name = 'wt_sentinel_mv';
CALL wt_wait_for('triggers_gone', $$SELECT count(*) = 0 FROM pg_trigger
                          WHERE tgfoid = 'matviews._on_change()'::regprocedure$$);

-- Cleanup.
SELECT r->>'status' AS status FROM matviews.delete('wt_recipients') r;
SELECT r->>'status' AS status FROM matviews.delete('wt_owned') r;
SELECT r->>'status' AS status FROM matviews.delete('wt_clash_mv') r;
SELECT r->>'status' AS status FROM matviews.delete('wt_catalog') r;
SELECT r->>'status' AS status FROM matviews.delete('wt_own_tables') r;
SELECT r->>'status' AS status FROM matviews.delete('wt_foreign_mv') r;
DROP MATERIALIZED VIEW wt_unmanaged;
DROP VIEW wt_enabled;
DROP TABLE wt_prefs, wt_users, wt_sentinel, wt_up_src, wt_events, wt_theirs, wt_clash, wt_extra;
DROP FOREIGN TABLE wt_foreign;
DROP SERVER wt_server;
DROP FOREIGN DATA WRAPPER wt_fdw;
DROP FUNCTION wt_noop();
REVOKE CREATE ON SCHEMA public FROM wt_owner;
DROP OWNED BY wt_owner, wt_writer, wt_other;
DROP ROLE wt_owner, wt_writer, wt_other;
DROP FUNCTION wt_sqlstate(text), wt_error(jsonb), wt_watch_runs(text), wt_unfinished(text);
DROP PROCEDURE wt_settle(text), wt_wait_for(text, text);
