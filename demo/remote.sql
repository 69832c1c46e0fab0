-- matviews demo, remote sources: the seeds/000 example. A Rails app has two databases; the
-- `users` table lives in the other one, and this database mirrors it as a materialized view
-- over dblink, with a unique index, refreshed concurrently. The seed wrote that view by hand,
-- with a column list and a password in the connection string; here the password goes in a user
-- mapping and matviews discovers the columns. See docs/remote.md.
--
-- Runs as a superuser in a throw-away cluster (scripts/demo.sh), after demo/demo.sql or alone.
\pset pager off
\pset format unaligned
\pset tuples_only on
\set QUIET on
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS matviews;
CREATE EXTENSION IF NOT EXISTS dblink;
-- Setup connections name this cluster's socket and port: libpq's defaults are the server
-- process's environment, which may point at another cluster.
SELECT format('host=%s port=%s dbname=second_db',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port')) AS second_db_setup,
       current_setting('port') AS port \gset

\echo
\echo '== remote sources (seeds/000): the other database, with its users table'
CREATE DATABASE second_db;
SELECT dblink_exec(:'second_db_setup', $$
    CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO users (name) VALUES ('Ada'), ('Grace'), ('Linus')$$);

\echo '== the app role: not a superuser, so dblink makes it log in with a password (over TCP)'
CREATE ROLE rails LOGIN PASSWORD 'rails-db-secret';
GRANT CREATE ON SCHEMA public TO rails;
SELECT dblink_exec(:'second_db_setup', 'GRANT SELECT ON users TO rails');

\echo '== the seeds way: DBLINK_INFO, a connection string with the password in it'
SELECT format('host=localhost port=%s dbname=second_db user=rails password=rails-db-secret', :'port') AS dblink_info \gset
\echo '-- matviews refuses it as a source (22023):'
SET ROLE rails;
SELECT jsonb_pretty(matviews.create('second_users', 'SELECT users.id AS user_id, users.name FROM users',
                                    source => :'dblink_info') -> 'error') AS error;
\echo '-- by hand, with a hand-written column list, it works, and the password is in the definition:'
CREATE MATERIALIZED VIEW second_users AS
    SELECT * FROM dblink(:'dblink_info', 'SELECT users.id, users.name FROM users')
    AS second_users(user_id uuid, name text);
RESET ROLE;
\echo '-- pg_matviews, which every role can read:'
SELECT definition FROM pg_matviews WHERE matviewname = 'second_users';

\echo
\echo '== the matviews way: a foreign server, and the password in a user mapping'
CREATE SERVER second_db FOREIGN DATA WRAPPER dblink_fdw
    OPTIONS (host 'localhost', port :'port', dbname 'second_db');
GRANT USAGE ON FOREIGN SERVER second_db TO rails;
CREATE USER MAPPING FOR rails SERVER second_db OPTIONS (user 'rails', password 'rails-db-secret');

\echo '== matviews.create(source => ...) as rails: columns discovered, unique index, concurrent;'
\echo '   force => true replaces the hand-written view'
SET ROLE rails;
SELECT jsonb_pretty(matviews.create(
    'second_users',
    'SELECT users.id AS user_id, users.name FROM users',
    source => 'second_db',
    refresh_strategy => 'concurrent',
    unique_index_columns => ARRAY['user_id'],
    force => true,
    row_count_strategy => 'exact') #- '{run_id}' #- '{response,duration_ms}') AS response;
RESET ROLE;
\echo '-- pg_matviews now names the server, never a password:'
SELECT definition FROM pg_matviews WHERE matviewname = 'second_users';
SELECT name FROM second_users ORDER BY name;

\echo
\echo '== a user signs up in the other database; a concurrent refresh (reads go on) picks it up'
SELECT dblink_exec(:'second_db_setup', $$INSERT INTO users (name) VALUES ('Margaret')$$);
SELECT jsonb_pretty(matviews.refresh('second_users', row_count_strategy => 'exact')
                    #- '{run_id}' #- '{response,duration_ms}') AS response;

\echo '== in the background: the worker runs it as the view owner, rails, with rails'' user mapping'
SELECT dblink_exec(:'second_db_setup', $$INSERT INTO users (name) VALUES ('Barbara')$$);
SELECT (matviews.enqueue('second_users')) ->> 'run_id' AS run_id \gset
SELECT jsonb_pretty(matviews.wait(:run_id) #- '{run_id}' #- '{response}') AS outcome;
SELECT name FROM second_users ORDER BY name;

\echo '== the seed''s daily rake task, as a schedule'
SELECT jsonb_pretty(matviews.schedule('second_users', '@daily') #- '{run_id}' #- '{response,duration_ms}') AS response;

\echo
\echo '== matviews.status and matviews.runs for second_users'
\pset format aligned
\pset tuples_only off
SELECT view, populated, strategy, schedule, last_status, consecutive_failures, owner
FROM matviews.status WHERE view = 'public.second_users';
SELECT id, operation, strategy, status, trigger, role, row_count_after, error->>'sqlstate' AS sqlstate
FROM matviews.runs WHERE view = 'public.second_users' ORDER BY id;
