-- Security: operations run with the caller's rights (a non-owner gets 42501 and nothing
-- changes), row-level security on the catalog, no direct writes to it, and no hijacking of
-- internal queries through the caller's search_path.

-- Runs a statement and returns 'ok' or its SQLSTATE and message.
CREATE FUNCTION sec_try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION sec_try(text) TO PUBLIC;

CREATE ROLE mv_alice LOGIN;
CREATE ROLE mv_bob LOGIN;
CREATE ROLE mv_carol LOGIN;
GRANT mv_alice TO mv_carol;
CREATE SCHEMA sec;
GRANT USAGE, CREATE ON SCHEMA sec TO mv_alice, mv_bob, mv_carol;

-- Each creates a view over its own table.
SET ROLE mv_alice;
CREATE TABLE sec.alice_t (id int PRIMARY KEY, v text);
INSERT INTO sec.alice_t VALUES (1, 'a1'), (2, 'a2');
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('sec.mv_alice', 'SELECT id, v FROM sec.alice_t', unique_index_columns => ARRAY['id']) r;
SELECT r->>'status' AS status FROM matviews.create('sec.mv_alice_kept', 'SELECT id FROM sec.alice_t') r;
SELECT r->>'status' AS status FROM matviews.delete('sec.mv_alice_kept', keep_definition => true) r;
CREATE MATERIALIZED VIEW sec.mv_alice_plain AS SELECT id FROM sec.alice_t;
CREATE VIEW sec.alice_dep AS SELECT id FROM sec.mv_alice;
RESET ROLE;
SET ROLE mv_bob;
CREATE TABLE sec.bob_t (id int PRIMARY KEY, v text);
INSERT INTO sec.bob_t VALUES (1, 'b1');
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('sec.mv_bob', 'SELECT id, v FROM sec.bob_t') r;
RESET ROLE;

CREATE TEMP TABLE sec_before AS
SELECT d.view_name, d.sql, d.refresh_strategy, d.unique_index_columns, d.options, d.enabled,
       c.oid AS reloid, c.relfilenode
FROM matviews.definitions d
LEFT JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', d.schema_name, d.view_name))
WHERE d.schema_name = 'sec';
GRANT SELECT ON sec_before TO PUBLIC;

-- Bob on Alice's views: 42501 for every operation.
SET ROLE mv_bob;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.refresh('sec.mv_alice') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('sec.mv_alice', strategy => 'concurrent') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('sec.mv_alice', row_count_strategy => 'exact') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('sec.mv_alice_plain') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.delete('sec.mv_alice') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.delete('sec.mv_alice', cascade => true) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.delete('sec.mv_alice', keep_definition => true) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.delete('sec.mv_alice_kept') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.alter('sec.mv_alice', enabled => false) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.alter('sec.mv_alice', unique_index_columns => ARRAY[]::text[]) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.alter('sec.mv_alice_kept', options => '{"max_retries": 1}') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.adopt('sec.mv_alice_plain') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('sec.mv_alice', 'SELECT 1 AS id', force => true) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('sec.mv_alice_kept', 'SELECT 1 AS id', force => true) r;
-- Ownership is checked first, as PostgreSQL does: 42501 even where Alice herself would get
-- another error (no usable unique index, dependents).
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('sec.mv_alice_plain', strategy => 'concurrent') r;
-- Reading Alice's table through a view of his own: PostgreSQL's own 42501.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.create('sec.mv_bob_steal', 'SELECT * FROM sec.alice_t') r;
RESET ROLE;

-- Nothing changed: same definitions, same relations (not rebuilt), no new definition.
SELECT b.view_name,
       d.sql = b.sql AND d.refresh_strategy = b.refresh_strategy
         AND d.unique_index_columns IS NOT DISTINCT FROM b.unique_index_columns
         AND d.options = b.options AND d.enabled = b.enabled AS definition_unchanged,
       c.oid IS NOT DISTINCT FROM b.reloid AND c.relfilenode IS NOT DISTINCT FROM b.relfilenode AS relation_unchanged
FROM sec_before b
LEFT JOIN matviews.definitions d ON d.schema_name = 'sec' AND d.view_name = b.view_name
LEFT JOIN pg_class c ON c.oid = to_regclass(format('sec.%I', b.view_name))
ORDER BY 1;
SELECT schema_name, view_name, owner FROM matviews.definitions WHERE schema_name = 'sec' ORDER BY 2;
SELECT to_regclass('sec.mv_alice_plain') IS NOT NULL AS plain_kept, to_regclass('sec.mv_bob_steal') IS NULL AS not_stolen;
SELECT pg_get_indexdef('sec.mv_alice_id_key'::regclass) AS alice_index;

-- A member of Alice's role may do what Alice may.
SET ROLE mv_carol;
SELECT r->>'status' AS status FROM matviews.refresh('sec.mv_alice') r;
SELECT r->>'status' AS status FROM matviews.alter('sec.mv_alice_kept', options => '{"max_retries": 2}') r;
RESET ROLE;

-- Row-level security: each role sees the definitions and runs of the views it owns (or whose
-- owner it is a member of), and the runs it made itself.
SET ROLE mv_alice;
SELECT schema_name, view_name, owner FROM matviews.definitions ORDER BY 2;
SELECT view, operation, status, role FROM matviews.runs ORDER BY id;
SELECT view, exists, owner FROM matviews.status ORDER BY 1;
RESET ROLE;
SET ROLE mv_bob;
SELECT schema_name, view_name, owner FROM matviews.definitions ORDER BY 2;
SELECT view, operation, status, role FROM matviews.runs ORDER BY id;
SELECT view, exists, owner FROM matviews.status ORDER BY 1;
RESET ROLE;
SET ROLE mv_carol;
SELECT schema_name, view_name, owner FROM matviews.definitions ORDER BY 2;
SELECT DISTINCT view FROM matviews.runs ORDER BY 1;
SELECT view FROM matviews.status ORDER BY 1;
RESET ROLE;
-- The superuser sees everything.
SELECT view FROM matviews.status WHERE view LIKE 'sec.%' ORDER BY 1;
SELECT count(DISTINCT role) AS roles FROM matviews.runs WHERE view LIKE 'sec.%';
-- A role that owns nothing sees nothing of the others.
CREATE ROLE mv_dave;
SET ROLE mv_dave;
SELECT count(*) AS definitions FROM matviews.definitions;
SELECT count(*) AS runs FROM matviews.runs;
SELECT count(*) AS status FROM matviews.status;
RESET ROLE;

-- A view that changes hands (ALTER ... OWNER TO): its next refresh by the new owner moves the
-- definition with it, so the new owner sees it and the old one no longer does.
SET ROLE mv_bob;
SELECT r->>'status' AS status FROM matviews.create('sec.mv_bob_gift', 'SELECT 1 AS x') r;
RESET ROLE;
ALTER MATERIALIZED VIEW sec.mv_bob_gift OWNER TO mv_alice;
SET ROLE mv_alice;
SELECT r->>'status' AS status FROM matviews.refresh('sec.mv_bob_gift') r;
SELECT view_name, owner FROM matviews.definitions WHERE view_name = 'mv_bob_gift';
RESET ROLE;
SET ROLE mv_bob;
SELECT count(*) AS bob_sees FROM matviews.definitions WHERE view_name = 'mv_bob_gift';
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.refresh('sec.mv_bob_gift') r;
RESET ROLE;
SELECT owner FROM matviews.definitions WHERE view_name = 'mv_bob_gift';

-- No direct writes to the catalog, even of one's own rows.
SET ROLE mv_alice;
SELECT sec_try($$INSERT INTO matviews.definitions (schema_name, view_name, sql, owner)
                  VALUES ('sec', 'mv_fake', 'SELECT 1', 'mv_alice')$$) AS insert_definition;
SELECT sec_try($$UPDATE matviews.definitions SET sql = 'SELECT 2' WHERE view_name = 'mv_alice'$$) AS update_definition;
SELECT sec_try($$DELETE FROM matviews.definitions WHERE view_name = 'mv_alice'$$) AS delete_definition;
SELECT sec_try($$TRUNCATE matviews.definitions$$) AS truncate_definitions;
SELECT sec_try($$INSERT INTO matviews.runs (view, operation, status, role, owner)
                  VALUES ('sec.x', 'refresh', 'success', 'mv_alice', 'mv_alice')$$) AS insert_run;
SELECT sec_try($$UPDATE matviews.runs SET status = 'success'$$) AS update_runs;
SELECT sec_try($$DELETE FROM matviews.runs$$) AS delete_runs;
SELECT sec_try($$ALTER TABLE matviews.runs DISABLE ROW LEVEL SECURITY$$) AS disable_rls;
SELECT sec_try($$DROP POLICY runs_visible ON matviews.runs$$) AS drop_policy;
SELECT sec_try($$CREATE FUNCTION matviews.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'$$) AS create_in_schema;
RESET ROLE;
SELECT count(*) AS no_fake FROM matviews.definitions WHERE view_name = 'mv_fake';

-- Internal queries cannot be hijacked through search_path: functions and operators named like
-- the ones matviews uses, in a schema searched before pg_catalog, are never called.
CREATE SCHEMA sec_evil;
GRANT USAGE ON SCHEMA sec_evil TO PUBLIC;
CREATE FUNCTION sec_evil.trap(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'hijacked: %', what;
END $$;
CREATE FUNCTION sec_evil.eq(name, text) RETURNS boolean LANGUAGE sql AS $$ SELECT sec_evil.trap('= (name, text)') $$;
CREATE FUNCTION sec_evil.eq(name, name) RETURNS boolean LANGUAGE sql AS $$ SELECT sec_evil.trap('= (name, name)') $$;
CREATE FUNCTION sec_evil.eq(oid, oid) RETURNS boolean LANGUAGE sql AS $$ SELECT sec_evil.trap('= (oid, oid)') $$;
CREATE FUNCTION sec_evil.eq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT sec_evil.trap('= (text, text)') $$;
CREATE FUNCTION sec_evil.eq(bigint, bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT sec_evil.trap('= (bigint, bigint)') $$;
CREATE FUNCTION sec_evil.gt(interval, interval) RETURNS boolean LANGUAGE sql AS $$ SELECT sec_evil.trap('> (interval, interval)') $$;
CREATE FUNCTION sec_evil.ge(smallint, smallint) RETURNS boolean LANGUAGE sql AS $$ SELECT sec_evil.trap('>= (smallint, smallint)') $$;
CREATE OPERATOR sec_evil.= (LEFTARG = name, RIGHTARG = text, FUNCTION = sec_evil.eq);
CREATE OPERATOR sec_evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = sec_evil.eq);
CREATE OPERATOR sec_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = sec_evil.eq);
CREATE OPERATOR sec_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sec_evil.eq);
CREATE OPERATOR sec_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = sec_evil.eq);
CREATE OPERATOR sec_evil.> (LEFTARG = interval, RIGHTARG = interval, FUNCTION = sec_evil.gt);
CREATE OPERATOR sec_evil.>= (LEFTARG = smallint, RIGHTARG = smallint, FUNCTION = sec_evil.ge);
CREATE FUNCTION sec_evil.pg_get_viewdef(oid, boolean) RETURNS text LANGUAGE sql AS $$ SELECT sec_evil.trap('pg_get_viewdef')::text $$;
CREATE FUNCTION sec_evil.current_setting(text) RETURNS text LANGUAGE sql AS $$ SELECT sec_evil.trap('current_setting')::text $$;
CREATE FUNCTION sec_evil.current_schemas(boolean) RETURNS name[] LANGUAGE sql AS $$ SELECT ARRAY[sec_evil.trap('current_schemas')::text]::name[] $$;
CREATE FUNCTION sec_evil.unnest(name[]) RETURNS SETOF name LANGUAGE sql AS $$ SELECT sec_evil.trap('unnest')::text::name $$;
CREATE FUNCTION sec_evil.format(text, name, name) RETURNS text LANGUAGE sql AS $$ SELECT sec_evil.trap('format')::text $$;
CREATE FUNCTION sec_evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ SELECT now() WHERE sec_evil.trap('clock_timestamp') $$;
CREATE FUNCTION sec_evil.count_sfunc(bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT 1::bigint WHERE sec_evil.trap('count(*)') $$;
CREATE AGGREGATE sec_evil.count(*) (SFUNC = sec_evil.count_sfunc, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION sec_evil.max_sfunc(integer, integer) RETURNS integer LANGUAGE sql AS $$ SELECT 1 WHERE sec_evil.trap('max') $$;
CREATE AGGREGATE sec_evil.max(integer) (SFUNC = sec_evil.max_sfunc, STYPE = integer);
-- The traps work: an unqualified query in that search_path falls into them.
SET search_path = sec_evil, pg_catalog, public;
SELECT public.sec_try($$SELECT count(*) FROM pg_class$$) AS trap_works;
SELECT public.sec_try($$SELECT 'a'::name = 'a'::text$$) AS trap_works;
RESET search_path;

-- Every operation, as Alice, with the traps first in search_path: all succeed.
SET ROLE mv_alice;
CREATE MATERIALIZED VIEW sec.mv_alice_adopt AS SELECT id FROM sec.alice_t;
SET search_path = sec_evil, pg_catalog, sec;
CREATE TEMP TABLE sec_results AS
SELECT 1 AS ord, 'create' AS op, matviews.create('sec.mv_alice_evil', 'SELECT id, v FROM sec.alice_t',
        refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id'], row_count_strategy => 'exact') AS r;
INSERT INTO sec_results SELECT 2, 'create dependent', matviews.create('sec.mv_alice_evil2', 'SELECT id FROM sec.mv_alice_evil', row_count_strategy => 'estimated');
INSERT INTO sec_results SELECT 3, 'refresh', matviews.refresh('mv_alice_evil', row_count_strategy => 'exact', cascade => true);
INSERT INTO sec_results SELECT 4, 'refresh regular', matviews.refresh('sec.mv_alice_evil', strategy => 'regular');
INSERT INTO sec_results SELECT 5, 'alter', matviews.alter('mv_alice_evil',
        options => '{"retry_delay": "1 minute", "lock_timeout": "1s", "statement_timeout": "1min"}', enabled => true);
INSERT INTO sec_results SELECT 6, 'alter index', matviews.alter('mv_alice_evil', unique_index_columns => ARRAY['id', 'v']);
INSERT INTO sec_results SELECT 7, 'adopt', matviews.adopt('mv_alice_adopt', options => '{"retry_delay": "5 minutes"}');
INSERT INTO sec_results SELECT 8, 'refresh with timeouts', matviews.refresh('mv_alice_evil');
INSERT INTO sec_results SELECT 9, 'delete refused', matviews.delete('mv_alice_evil');
INSERT INTO sec_results SELECT 10, 'delete keep', matviews.delete('mv_alice_evil2', keep_definition => true);
INSERT INTO sec_results SELECT 11, 'alter kept', matviews.alter('mv_alice_evil2', enabled => false);
INSERT INTO sec_results SELECT 12, 'delete kept', matviews.delete('mv_alice_evil2');
INSERT INTO sec_results SELECT 13, 'delete cascade', matviews.delete('mv_alice_evil', cascade => true);
INSERT INTO sec_results SELECT 14, 'delete adopted', matviews.delete('mv_alice_adopt');
RESET search_path;
SELECT ord, op, r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       jsonb_path_query_array(r->'response'->'cascade', '$[*].status') AS cascade
FROM sec_results ORDER BY ord;
DROP TABLE sec_results;
RESET ROLE;
SET client_min_messages = warning;
DROP SCHEMA sec_evil CASCADE;
RESET client_min_messages;

-- Clean up.
SET client_min_messages = warning;
SELECT r->>'status' AS status, r->>'view' AS view
FROM (VALUES (1, 'sec.mv_alice'), (2, 'sec.mv_alice_kept'), (3, 'sec.mv_alice_plain'), (4, 'sec.mv_bob'),
             (5, 'sec.mv_bob_gift')) v(i, n),
     matviews.delete(v.n, cascade => true) r ORDER BY v.i;
DROP TABLE sec.alice_t, sec.bob_t, sec_before;
DROP SCHEMA sec;
DROP FUNCTION sec_try(text);
DROP ROLE mv_alice, mv_bob, mv_carol, mv_dave;
RESET client_min_messages;
