-- Remote sources (SPEC §6, seeds/000): create(source => server) builds a view over dblink from
-- a query run on the database a foreign server names, with the columns discovered from the
-- remote query. One cluster, two databases: contrib_regression (the views) and mvtest_remote_db
-- (the remote tables), reached through loopback foreign servers and user mappings.
--
-- dblink's libpq defaults are the server process's environment, so every connection names this
-- cluster's socket directory (peer authentication) or localhost (scram-sha-256), and its port.
SELECT split_part(current_setting('unix_socket_directories'), ',', 1) AS sockdir,
       current_setting('port') AS port \gset
SELECT format('host=%s port=%s dbname=mvtest_remote_db', :'sockdir', :'port') AS remote_cs \gset
-- The status and the error of a response (the error's context names a backend-specific run).
CREATE FUNCTION mvtest_remote_error(r jsonb) RETURNS TABLE (status text, sqlstate text, message text, detail text, hint text)
LANGUAGE sql AS $$
    SELECT r->>'status', r->'error'->>'sqlstate', r->'error'->>'message', r->'error'->>'detail', r->'error'->>'hint'
$$;
-- The columns of a relation, as format_type shows them.
CREATE FUNCTION mvtest_columns(rel regclass) RETURNS TABLE (name name, type text)
LANGUAGE sql AS $$
    SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
    WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped ORDER BY attnum
$$;

-- 1. dblink is not installed: 42883, with the hint to install it. Nothing is created.
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_nodblink', 'SELECT 1 AS x', source => 'mvtest_remote'));
SELECT to_regclass('mv_remote_nodblink') IS NULL AS not_created;

-- 2. Setup: the second database and its tables; a dblink_fdw server on the socket with a user
-- mapping for the superuser, one without any mapping, and one of a wrapper that is neither
-- dblink_fdw nor postgres_fdw.
CREATE EXTENSION dblink;
CREATE DATABASE mvtest_remote_db;
SELECT dblink_exec(:'remote_cs', $$
    CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        email varchar(80),
        balance numeric(10,2),
        tags text[],
        created_at timestamptz NOT NULL DEFAULT now(),
        active boolean NOT NULL DEFAULT true,
        "Mixed Case" int);
    INSERT INTO users (name, email, balance, tags, "Mixed Case") VALUES
        ('ada', 'ada@example.com', 10.50, '{admin}', 1),
        ('bob', NULL, 0, '{}', 2),
        ('cy', 'cy@example.com', 99999999.99, '{a,"b c"}', NULL);
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE TABLE moods (user_name text, mood mood);
    INSERT INTO moods VALUES ('ada', 'happy')$$);
CREATE SERVER mvtest_remote FOREIGN DATA WRAPPER dblink_fdw
    OPTIONS (host :'sockdir', port :'port', dbname 'mvtest_remote_db');
CREATE USER MAPPING FOR CURRENT_USER SERVER mvtest_remote;
CREATE SERVER mvtest_unmapped FOREIGN DATA WRAPPER dblink_fdw
    OPTIONS (host :'sockdir', port :'port', dbname 'mvtest_remote_db');
CREATE FOREIGN DATA WRAPPER mvtest_other_fdw;
CREATE SERVER mvtest_other FOREIGN DATA WRAPPER mvtest_other_fdw;

-- Rows of a materialized view that the remote query does not return, and the other way round
-- (0: the same data). The remote side is read with the view's own column types.
CREATE FUNCTION mvtest_remote_diff(mv regclass, remote_sql text, cs text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    n bigint;
BEGIN
    SELECT string_agg(format('%I %s', name, type), ', ') INTO cols FROM mvtest_columns(mv);
    EXECUTE format('SELECT count(*) FROM ((TABLE %1$s EXCEPT ALL SELECT * FROM dblink(%2$L, %3$L) AS t(%4$s))
                    UNION ALL (SELECT * FROM dblink(%2$L, %3$L) AS t(%4$s) EXCEPT ALL TABLE %1$s)) d',
                   mv, cs, remote_sql, cols) INTO n;
    RETURN n;
END $$;

-- 3. Refusals, each with its SQLSTATE; nothing is created, and no dblink connection is left open.
-- A connection string with a password (22023): it would be readable by every role in pg_matviews.
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT 1 AS x',
    source => 'host=localhost dbname=mvtest_remote_db user=postgres password=mvtest-cs-secret'));
-- ... also as a URI with user:password@ (22023).
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT 1 AS x',
    source => 'postgresql://postgres:mvtest-uri-secret@localhost/mvtest_remote_db'));
-- The request in the response (and in matviews.runs) does not keep such a source.
SELECT r->'request'->>'source' AS source FROM matviews.create('mv_remote_bad', 'SELECT 1 AS x',
    source => 'dbname=mvtest_remote_db password=mvtest-cs-secret') r;
-- A connection string without a password (22023): source names a foreign server.
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT 1 AS x',
    source => 'host=localhost dbname=mvtest_remote_db'));
-- ... and no connection string is recorded, with a password or not: libpq takes a password in
-- more forms than a check can list (passfile, service, options).
SELECT r->'request'->>'source' AS source FROM matviews.create('mv_remote_bad', 'SELECT 1 AS x',
    source => 'host=localhost dbname=mvtest_remote_db passfile=/tmp/mvtest-passfile') r;
SELECT count(*) AS runs_with_connection_string FROM matviews.runs r
WHERE r::text LIKE '%dbname=%' OR r::text LIKE '%passfile%';
-- An unknown server (42704).
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT 1 AS x', source => 'mvtest_nowhere'));
-- A server of another foreign-data wrapper (42809).
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT 1 AS x', source => 'mvtest_other'));
-- No user mapping for the caller (42704).
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT 1 AS x', source => 'mvtest_unmapped'));
-- A user mapping for PUBLIC counts too.
CREATE USER MAPPING FOR PUBLIC SERVER mvtest_unmapped;
SELECT r->>'status' AS status, r->'response'->'columns' AS columns
FROM matviews.create('mv_remote_public', $$SELECT 1 AS x, E'it''s a \\ backslash' AS "select"$$, source => 'mvtest_unmapped') r;
SELECT * FROM mv_remote_public;
DROP USER MAPPING FOR PUBLIC SERVER mvtest_unmapped;
-- Remote query errors keep the remote SQLSTATE and message: an unknown column (42703), an
-- unknown table (42P01), a division by zero while the view is filled (22012).
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT nope FROM users', source => 'mvtest_remote'));
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT * FROM nope', source => 'mvtest_remote'));
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT 1/0 AS x', source => 'mvtest_remote'));
-- A column type this database does not have (42704).
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT user_name, mood FROM moods', source => 'mvtest_remote'));
-- A query without columns (22023).
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT FROM users', source => 'mvtest_remote'));
-- ... which a cast in the remote query avoids.
SELECT r->>'status' AS status, r->'response'->'columns' AS columns
FROM matviews.create('mv_remote_moods', 'SELECT user_name, mood::text AS mood FROM moods', source => 'mvtest_remote') r;
SELECT * FROM mv_remote_moods;
-- ... or the same type, created here: types are matched by name.
CREATE TYPE mood AS ENUM ('happy', 'sad');
SELECT r->>'status' AS status, r->'response'->'columns' AS columns
FROM matviews.create('mv_remote_moods_typed', 'SELECT user_name, mood FROM moods', source => 'mvtest_remote') r;
SELECT user_name, mood, pg_typeof(mood) AS type FROM mv_remote_moods_typed;
-- Types are matched by schema and name (a built-in type by its OID): a remote type of the same
-- name in another schema is not this database's type (42704), and the local column list is
-- written from the local catalog, never from the remote's text.
SELECT dblink_exec(:'remote_cs', $$
    CREATE SCHEMA elsewhere;
    CREATE TYPE elsewhere.mood AS ENUM ('x');
    CREATE TABLE elsewhere_moods (m elsewhere.mood)$$);
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT m FROM elsewhere_moods', source => 'mvtest_remote'));
-- Local checks come first: a query that is not one SELECT is refused before any connection.
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad', 'SELECT 1; DROP TABLE users', source => 'mvtest_remote'));
-- ... also when one statement here is two on a server that reads backslashes the other way
-- (standard_conforming_strings off there): the query must be one statement either way (42601).
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad',
    $$SELECT 'a\' AS x, ';DROP TABLE moods; --' AS y$$, source => 'mvtest_remote'));
SET standard_conforming_strings = off;
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad',
    $$SELECT 'a\' AS x; DROP TABLE moods; --'$$, source => 'mvtest_remote'));
RESET standard_conforming_strings;
-- ... and it must mean the same with either setting: a backslash in a '...' literal does not
-- (22P06); E'...' and dollar quotes do.
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_bad',
    $$SELECT 'a\nb' AS x$$, source => 'mvtest_remote'));
SELECT r->>'status' AS status
FROM matviews.create('mv_remote_escapes', $$SELECT E'a\nb' AS x, $q$c\d$q$ AS y$$, source => 'mvtest_remote') r;
SELECT x = E'a\nb' AS newline, y = E'c\\d' AS backslash FROM mv_remote_escapes;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_escapes') r;
SELECT count(*) AS remote_moods_kept FROM dblink(:'remote_cs', 'SELECT 1 FROM moods') AS t(x int);
SELECT to_regclass('mv_remote_bad') IS NULL AS not_created,
       dblink_get_connections() IS NULL AS no_connection_left,
       (SELECT count(*) FROM matviews.definitions WHERE view_name = 'mv_remote_bad') AS definitions;
-- The failures are recorded as failed runs, with the same SQLSTATEs.
SELECT operation, status, error->>'sqlstate' AS sqlstate
FROM matviews.runs WHERE view = 'public.mv_remote_bad' ORDER BY id;

-- 4. create: the columns and their types come from the remote query (typmods, arrays and quoted
-- names included), and the data equals the remote query's.
SELECT r->>'status' AS status, r->'request'->>'source' AS source,
       r->'response'->>'source' AS response_source, r->'response'->'columns' AS columns,
       r->'response'->'sql'->>0 AS statement
FROM matviews.create('mv_remote_users',
    'SELECT id, name, email, balance, tags, created_at, active, "Mixed Case" FROM users',
    source => 'mvtest_remote') r;
SELECT * FROM mvtest_columns('mv_remote_users');
SELECT name, email, balance, tags, active, "Mixed Case" FROM mv_remote_users ORDER BY name;
SELECT mvtest_remote_diff('mv_remote_users', 'SELECT id, name, email, balance, tags, created_at, active, "Mixed Case" FROM users', :'remote_cs') AS diff;
SELECT schema_name, view_name, source, sql, refresh_strategy FROM matviews.definitions WHERE view_name = 'mv_remote_users';
-- A create that would be skipped (the view exists) still refuses a password in source, before
-- anything is recorded with it.
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_users', 'SELECT 1', source => 'password=mvtest-skip-secret'));
SELECT count(*) AS leaked FROM matviews.runs WHERE meta::text LIKE '%mvtest-skip-secret%';

-- 5. Refresh after remote changes, with each strategy.
-- A view with a unique index, refreshed concurrently by default.
SELECT r->>'status' AS status, r->'response'->>'index' AS index
FROM matviews.create('mv_remote_conc', 'SELECT id, name, balance FROM users', source => 'mvtest_remote',
                     refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id']) r;
SELECT dblink_exec(:'remote_cs', $$
    INSERT INTO users (name, balance) VALUES ('dee', 1.25);
    UPDATE users SET balance = balance + 1 WHERE name = 'ada';
    DELETE FROM users WHERE name = 'bob'$$);
-- regular
SELECT r->>'status' AS status, r->'request'->>'strategy' AS strategy, r->'response'->'sql' AS sql
FROM matviews.refresh('mv_remote_users', strategy => 'regular') r;
SELECT mvtest_remote_diff('mv_remote_users', 'SELECT id, name, email, balance, tags, created_at, active, "Mixed Case" FROM users', :'remote_cs') AS diff;
SELECT name, balance FROM mv_remote_users ORDER BY name;
-- concurrent (the definition's strategy)
SELECT r->>'status' AS status, r->'request'->>'strategy' AS strategy, r->'response'->'sql' AS sql
FROM matviews.refresh('mv_remote_conc') r;
SELECT mvtest_remote_diff('mv_remote_conc', 'SELECT id, name, balance FROM users', :'remote_cs') AS diff;
SELECT name, balance FROM mv_remote_conc ORDER BY name;
-- swap, from the stored definition
SELECT dblink_exec(:'remote_cs', $$UPDATE users SET name = 'cyrus' WHERE name = 'cy'$$);
SELECT r->>'status' AS status, r->'request'->>'strategy' AS strategy
FROM matviews.refresh('mv_remote_conc', strategy => 'swap') r;
SELECT mvtest_remote_diff('mv_remote_conc', 'SELECT id, name, balance FROM users', :'remote_cs') AS diff;
SELECT indexname FROM pg_indexes WHERE tablename = 'mv_remote_conc';
SELECT r->>'status' AS status FROM matviews.swap('mv_remote_users') r;
SELECT mvtest_remote_diff('mv_remote_users', 'SELECT id, name, email, balance, tags, created_at, active, "Mixed Case" FROM users', :'remote_cs') AS diff;
-- swap with a new remote query: the columns are discovered again, and the definition updated.
SELECT r->>'status' AS status, r->'response'->'columns' AS columns,
       r->'response'->'definition_updated' AS definition_updated
FROM matviews.swap('mv_remote_conc', 'SELECT id, name, balance, upper(name)::varchar(10) AS shout FROM users') r;
SELECT * FROM mvtest_columns('mv_remote_conc');
SELECT name, balance, shout FROM mv_remote_conc ORDER BY name;
SELECT sql, source FROM matviews.definitions WHERE view_name = 'mv_remote_conc';
SELECT r->>'status' AS status, r->'request'->>'strategy' AS strategy
FROM matviews.refresh('mv_remote_conc') r;
-- A new remote query that fails remotely leaves the view and its definition as they were.
SELECT * FROM mvtest_remote_error(matviews.swap('mv_remote_conc', 'SELECT id, nope FROM users'));
SELECT sql FROM matviews.definitions WHERE view_name = 'mv_remote_conc';
SELECT name, shout FROM mv_remote_conc ORDER BY name;

-- A remote query with *: the remote columns are read at every refresh, so a remote column added
-- later breaks the refresh (42804), until swap with the query discovers the columns again.
SELECT dblink_exec(:'remote_cs', $$CREATE TABLE events (id int PRIMARY KEY, kind text);
                                   INSERT INTO events VALUES (1, 'signup'), (2, 'login')$$);
SELECT r->>'status' AS status, r->'response'->'columns' AS columns
FROM matviews.create('mv_remote_events', 'SELECT * FROM events', source => 'mvtest_remote') r;
SELECT dblink_exec(:'remote_cs', $$ALTER TABLE events ADD COLUMN at date DEFAULT '2024-01-02'$$);
SELECT status, sqlstate, message FROM mvtest_remote_error(matviews.refresh('mv_remote_events'));
SELECT r->>'status' AS status, r->'response'->'columns' AS columns
FROM matviews.swap('mv_remote_events', 'SELECT * FROM events') r;
SELECT * FROM mv_remote_events ORDER BY id;

-- 6. A postgres_fdw server works the same way (its non-libpq options are left out).
CREATE EXTENSION postgres_fdw;
CREATE SERVER mvtest_remote_pgfdw FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host :'sockdir', port :'port', dbname 'mvtest_remote_db', fetch_size '1000');
CREATE USER MAPPING FOR CURRENT_USER SERVER mvtest_remote_pgfdw;
SELECT r->>'status' AS status, r->'response'->'columns' AS columns
FROM matviews.create('mv_remote_pgfdw', 'SELECT name FROM users', source => 'mvtest_remote_pgfdw') r;
SELECT name FROM mv_remote_pgfdw ORDER BY name;

-- 7. A view owned by a role that is not a superuser. dblink makes such a role authenticate with
-- a password, which belongs in its user mapping; the server is reached over TCP (scram-sha-256).
CREATE ROLE mvtest_remote_owner LOGIN PASSWORD 'mvtest-mapping-secret';
GRANT CREATE ON SCHEMA public TO mvtest_remote_owner;
SELECT dblink_exec(:'remote_cs', 'GRANT SELECT ON users TO mvtest_remote_owner');
CREATE SERVER mvtest_remote_tcp FOREIGN DATA WRAPPER dblink_fdw
    OPTIONS (host 'localhost', port :'port', dbname 'mvtest_remote_db');
CREATE USER MAPPING FOR mvtest_remote_owner SERVER mvtest_remote_tcp OPTIONS (user 'mvtest_remote_owner');
-- Without USAGE on the server (42501).
SET ROLE mvtest_remote_owner;
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_owned', 'SELECT id, name FROM users', source => 'mvtest_remote_tcp'));
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER mvtest_remote_tcp TO mvtest_remote_owner;
-- A user mapping without a password (2F003: dblink requires one for a role that is not a superuser).
SET ROLE mvtest_remote_owner;
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_owned', 'SELECT id, name FROM users', source => 'mvtest_remote_tcp'));
RESET ROLE;
-- The password goes in the user mapping.
ALTER USER MAPPING FOR mvtest_remote_owner SERVER mvtest_remote_tcp OPTIONS (ADD password 'mvtest-mapping-secret');
-- Discovery creates a temporary view remotely: it needs TEMPORARY on the remote database (42501)
-- and a remote side that may write (25006 when the remote transaction is read-only).
REVOKE TEMPORARY ON DATABASE mvtest_remote_db FROM PUBLIC;
SET ROLE mvtest_remote_owner;
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_owned', 'SELECT id, name FROM users', source => 'mvtest_remote_tcp'));
RESET ROLE;
GRANT TEMPORARY ON DATABASE mvtest_remote_db TO PUBLIC;
ALTER ROLE mvtest_remote_owner IN DATABASE mvtest_remote_db SET default_transaction_read_only = on;
SET ROLE mvtest_remote_owner;
SELECT * FROM mvtest_remote_error(matviews.create('mv_remote_owned', 'SELECT id, name FROM users', source => 'mvtest_remote_tcp'));
RESET ROLE;
ALTER ROLE mvtest_remote_owner IN DATABASE mvtest_remote_db RESET default_transaction_read_only;
SET ROLE mvtest_remote_owner;
SELECT r->>'status' AS status, r->'response'->'columns' AS columns
FROM matviews.create('mv_remote_owned', 'SELECT id, name FROM users', source => 'mvtest_remote_tcp',
                     refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id']) r;
SELECT name FROM mv_remote_owned ORDER BY name;
RESET ROLE;
-- The superuser has no user mapping for that server, yet refreshes the view: REFRESH runs the
-- query as the view's owner, so the owner's user mapping is used.
SELECT dblink_exec(:'remote_cs', $$INSERT INTO users (name) VALUES ('eve')$$);
SELECT r->>'status' AS status FROM matviews.refresh('mv_remote_owned') r;
SELECT mvtest_remote_diff('mv_remote_owned', 'SELECT id, name FROM users', :'remote_cs') AS diff;
-- swap fills the new relation by REFRESH as the owner: the owner's user mapping again.
SELECT dblink_exec(:'remote_cs', $$INSERT INTO users (name) VALUES ('eli')$$);
SELECT r->>'status' AS status FROM matviews.swap('mv_remote_owned') r;
SELECT mvtest_remote_diff('mv_remote_owned', 'SELECT id, name FROM users', :'remote_cs') AS diff;
-- swap with a new query discovers its columns as the caller, who needs a user mapping (42704);
-- the owner has one.
SELECT * FROM mvtest_remote_error(matviews.swap('mv_remote_owned', 'SELECT id, name, upper(name) AS shout FROM users'));
SET ROLE mvtest_remote_owner;
SELECT r->>'status' AS status, r->'response'->'columns' AS columns
FROM matviews.swap('mv_remote_owned', 'SELECT id, name, upper(name) AS shout FROM users') r;
RESET ROLE;
SELECT mvtest_remote_diff('mv_remote_owned', 'SELECT id, name, upper(name) AS shout FROM users', :'remote_cs') AS diff;

-- 8. Background work: an enqueued refresh, run by the worker as the view's owner.
SELECT dblink_exec(:'remote_cs', $$INSERT INTO users (name) VALUES ('fay')$$);
SELECT r->>'status' AS enqueue_status, r->>'run_id' AS run_id FROM matviews.enqueue('mv_remote_owned') r \gset
\echo :enqueue_status
SELECT r->>'status' AS status, r->>'operation' AS operation, r->>'strategy' AS strategy,
       r->>'trigger' AS trigger, r->'error' AS error
FROM matviews.wait(:run_id) r;
SELECT mvtest_remote_diff('mv_remote_owned', 'SELECT id, name, upper(name) AS shout FROM users', :'remote_cs') AS diff;
SELECT role, owner FROM matviews.runs WHERE id = :run_id;
-- A swap in the background runs as the owner too, so it needs no user mapping of the caller's.
SELECT dblink_exec(:'remote_cs', $$INSERT INTO users (name) VALUES ('fred')$$);
SELECT (matviews.enqueue('mv_remote_owned', strategy => 'swap'))->>'run_id' AS run_id \gset
SELECT r->>'status' AS status, r->>'strategy' AS strategy, r->'error' AS error FROM matviews.wait(:run_id) r;
SELECT mvtest_remote_diff('mv_remote_owned', 'SELECT id, name, upper(name) AS shout FROM users', :'remote_cs') AS diff;
-- A superuser's view, enqueued with the swap strategy.
SELECT dblink_exec(:'remote_cs', $$INSERT INTO users (name) VALUES ('gus')$$);
SELECT (matviews.enqueue('mv_remote_conc', strategy => 'swap'))->>'run_id' AS run_id \gset
SELECT r->>'status' AS status, r->>'strategy' AS strategy, r->'error' AS error FROM matviews.wait(:run_id) r;
SELECT mvtest_remote_diff('mv_remote_conc', 'SELECT id, name, balance, upper(name)::varchar(10) AS shout FROM users', :'remote_cs') AS diff;
-- A schedule: after a remote change, the scheduled refresh brings the view up to date.
SELECT dblink_exec(:'remote_cs', $$INSERT INTO users (name) VALUES ('hal')$$);
SELECT r->>'status' AS status, r->'response'->>'schedule' AS schedule
FROM matviews.schedule('mv_remote_users', '1 second') r;
SELECT mvtest_wait_for($$SELECT EXISTS (SELECT 1 FROM matviews.runs WHERE view = 'public.mv_remote_users'
                                        AND trigger = 'schedule' AND status = 'success')$$) AS scheduled_run;
SELECT mvtest_remote_diff('mv_remote_users', 'SELECT id, name, email, balance, tags, created_at, active, "Mixed Case" FROM users', :'remote_cs') AS diff;
SELECT r->>'status' AS status FROM matviews.unschedule('mv_remote_users') r;
SELECT mvtest_wait_for($$SELECT NOT EXISTS (SELECT 1 FROM matviews.runs WHERE view LIKE 'public.mv_remote%'
                                            AND status IN ('queued', 'running'))$$) AS background_idle;
SELECT count(*) AS failed_background_runs FROM matviews.runs
WHERE view LIKE 'public.mv_remote%' AND trigger <> 'manual' AND status <> 'success';

-- 9. No password anywhere a role could read it: not in pg_matviews, not in the definitions, not
-- in the runs (the refused connection string included).
SELECT count(*) AS definitions_with_password FROM pg_matviews
WHERE definition ILIKE '%password%' OR definition LIKE '%mvtest-%secret%';
SELECT count(*) AS stored_with_password FROM matviews.definitions d WHERE d::text LIKE '%secret%';
SELECT count(*) AS runs_with_password FROM matviews.runs r WHERE r::text LIKE '%secret%';
SELECT definition FROM pg_matviews WHERE matviewname = 'mv_remote_owned';

-- 10. When the server's side changes: a dropped user mapping, then a dropped server.
DROP USER MAPPING FOR mvtest_remote_owner SERVER mvtest_remote_tcp;
SELECT * FROM mvtest_remote_error(matviews.refresh('mv_remote_owned'));
DROP SERVER mvtest_remote_pgfdw CASCADE;
SELECT status, sqlstate, message FROM mvtest_remote_error(matviews.refresh('mv_remote_pgfdw'));

-- 11. dblink installed in another schema, outside search_path: matviews finds it and qualifies
-- every call.
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_users') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_conc') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_moods') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_moods_typed') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_public') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_owned') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_pgfdw') r;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_events') r;
DROP FUNCTION mvtest_remote_diff(regclass, text, text);
CREATE SCHEMA mvtest_ext;
ALTER EXTENSION dblink SET SCHEMA mvtest_ext;
SELECT r->>'status' AS status, r->'response'->'sql'->>0 AS statement
FROM matviews.create('mv_remote_ext', 'SELECT count(*) AS n FROM events', source => 'mvtest_remote') r;
SELECT * FROM mv_remote_ext;
SELECT r->>'status' AS status FROM matviews.refresh('mv_remote_ext') r;
-- A remote view cannot be watched (0A000): changes in the other database fire no trigger here.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.watch('mv_remote_ext') r;
-- Nor refreshed incrementally (0A000): its rows come over dblink. explain says so ahead of time.
CREATE UNIQUE INDEX mv_remote_ext_n ON mv_remote_ext (n);
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.alter('mv_remote_ext', refresh_strategy => 'incremental') r;
SELECT matviews.explain('mv_remote_ext')->'strategies'->'incremental' AS incremental;
SELECT r->>'status' AS status FROM matviews.delete('mv_remote_ext') r;

-- Cleanup: the servers, the second database, then the role.
DROP SERVER mvtest_remote CASCADE;
DROP SERVER mvtest_unmapped;
DROP SERVER mvtest_remote_tcp CASCADE;
DROP SERVER mvtest_other;
DROP FOREIGN DATA WRAPPER mvtest_other_fdw;
DROP EXTENSION postgres_fdw;
DROP EXTENSION dblink;
DROP SCHEMA mvtest_ext;
DROP TYPE mood;
DROP FUNCTION mvtest_remote_error(jsonb);
DROP FUNCTION mvtest_columns(regclass);
REVOKE CREATE ON SCHEMA public FROM mvtest_remote_owner;
DROP DATABASE mvtest_remote_db;
DROP ROLE mvtest_remote_owner;
