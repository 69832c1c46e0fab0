-- Incremental refresh (refresh_strategy 'incremental') and matviews.explain: every 0A000 reason,
-- every explain field, the incremental path and each fallback, capture and its rights.
SET matviews.incremental_max_fraction = 1;  -- tiny views: never fall back for their size
CREATE TABLE inc_orders (id int PRIMARY KEY, cust int, amount numeric, status text);
CREATE TABLE inc_custs (id int PRIMARY KEY, name text, region text);
INSERT INTO inc_custs SELECT g, 'c' || g, CASE WHEN g % 2 = 0 THEN 'east' ELSE 'west' END
FROM generate_series(1, 10) g;
INSERT INTO inc_orders SELECT g, g % 10 + 1, g, CASE WHEN g % 3 = 0 THEN 'open' ELSE 'closed' END
FROM generate_series(1, 60) g;

-- A query outside the supported class: 0A000, the detail names the part, the hint the nearest
-- strategy that works. Nothing is created.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail,
       r->'error'->>'hint' AS hint
FROM matviews.create('inc_bad', 'SELECT id, row_number() OVER (ORDER BY id) AS rn FROM inc_orders',
                     refresh_strategy => 'incremental', unique_index_columns => '{id}') r;
SELECT count(*) AS created FROM pg_class WHERE relname = 'inc_bad';
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail, r->'error'->>'hint' AS hint
FROM matviews.create('inc_bad', 'SELECT id FROM inc_orders', refresh_strategy => 'incremental') r;

-- Each reason, as explain(sql) reports it ahead of time.
CREATE FOREIGN DATA WRAPPER inc_fdw;
CREATE SERVER inc_server FOREIGN DATA WRAPPER inc_fdw;
CREATE FOREIGN TABLE inc_foreign (a int) SERVER inc_server;
CREATE MATERIALIZED VIEW inc_other AS SELECT 1 AS a;
CREATE FUNCTION inc_rows() RETURNS SETOF int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
SELECT q AS query, matviews.explain(sql => q)->'strategies'->'incremental'->'reasons' AS reasons
FROM unnest(ARRAY[
  'SELECT id, row_number() OVER () FROM inc_orders',
  'SELECT id FROM inc_orders LIMIT 5',
  'SELECT id, now() AS at FROM inc_orders',
  'SELECT id, random() AS r FROM inc_orders',
  'SELECT id, generate_series(1, 2) AS g FROM inc_orders',
  'SELECT id FROM inc_orders TABLESAMPLE SYSTEM (50)',
  'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r',
  'WITH w AS (SELECT id FROM inc_orders) SELECT id FROM w',
  'SELECT a FROM inc_foreign',
  'SELECT a FROM inc_other',
  'SELECT oid, relname FROM pg_class',
  'SELECT id FROM matviews.definitions',
  'SELECT ctid, id FROM inc_orders',
  'SELECT o.id FROM inc_orders o FULL JOIN inc_custs c ON c.id = o.cust',
  'SELECT id FROM inc_orders UNION SELECT id FROM inc_custs',
  'SELECT id FROM inc_orders INTERSECT SELECT id FROM inc_custs',
  'SELECT count(*) FROM inc_orders',
  'SELECT cust, status, count(*) FROM inc_orders GROUP BY GROUPING SETS ((cust), (status))',
  'SELECT DISTINCT ON (cust) cust, id FROM inc_orders',
  'SELECT id FROM inc_orders WHERE cust IN (SELECT id FROM inc_custs)',
  'SELECT s.cust FROM (SELECT cust, count(*) FROM inc_orders GROUP BY cust) s',
  'SELECT x FROM inc_rows() x',
  'SELECT o.id FROM inc_orders o LEFT JOIN inc_custs c ON c.id = o.cust WHERE c.id IS NULL',
  'SELECT id FROM inc_orders UNION ALL SELECT id FROM inc_custs ORDER BY 1',
  'SELECT s.cust FROM (SELECT DISTINCT cust FROM inc_orders) s',
  'SELECT x.a FROM XMLTABLE(''/r'' PASSING (''<r a="1"/>''::xml) COLUMNS a int PATH ''@a'') x',
  'SELECT id FROM inc_orders'
]) q;

-- explain of a managed view: every field.
SELECT r->>'status' AS status FROM matviews.create('inc_by_region',
  'SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM inc_orders o JOIN inc_custs c ON c.id = o.cust GROUP BY c.region',
  refresh_strategy => 'incremental', unique_index_columns => '{region}') r;
SELECT jsonb_pretty(matviews.explain('inc_by_region'));
-- A query not created yet: no key yet, a suggested one, and the CREATE UNIQUE INDEX to run.
SELECT jsonb_pretty(matviews.explain(sql =>
  'SELECT o.id, o.amount, c.name FROM inc_orders o LEFT JOIN inc_custs c ON c.id = o.cust'));
-- A managed view without a unique index.
SELECT r->>'status' AS status FROM matviews.create('inc_nokey', 'SELECT cust, count(*) AS n FROM inc_orders GROUP BY cust') r;
SELECT jsonb_pretty(matviews.explain('inc_nokey'));
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail, r->'error'->>'hint' AS hint
FROM matviews.alter('inc_nokey', refresh_strategy => 'incremental') r;
-- The key is an aggregate: no usable key.
SELECT r->'error'->>'detail' AS detail FROM matviews.create('inc_aggkey',
  'SELECT cust, max(id) AS n FROM inc_orders GROUP BY cust', refresh_strategy => 'incremental',
  unique_index_columns => '{n}') r;
-- Errors of explain itself.
SELECT matviews.explain();
SELECT matviews.explain('inc_by_region', 'SELECT 1');
SELECT matviews.explain('inc_missing');
SELECT matviews.explain(sql => 'DELETE FROM inc_orders');

-- The capture triggers are on both tables; the first refresh is a full one.
SELECT tgrelid::regclass AS table_name, tgname FROM pg_trigger
WHERE tgname LIKE 'matviews_capture%' ORDER BY 1, 2;
SELECT r->'response'->>'fallback' AS fallback, r->'response'->>'full_refresh' AS full_refresh
FROM matviews.refresh('inc_by_region') r;

-- Changes: an update that moves a customer to another region, a delete, an insert, a rolled back
-- write (captures nothing). The refresh recomputes only the affected groups.
UPDATE inc_custs SET region = 'north' WHERE id = 3;
DELETE FROM inc_orders WHERE id = 10;
INSERT INTO inc_orders VALUES (100, 4, 7, 'open');
BEGIN;
UPDATE inc_orders SET amount = 0;
ROLLBACK;
SELECT r->>'status' AS status, r->'response'->>'fallback' AS fallback,
       r->'response'->'incremental' AS incremental
FROM matviews.refresh('inc_by_region') r;
SELECT * FROM inc_by_region ORDER BY region;
SELECT (SELECT count(*) FROM (SELECT * FROM inc_by_region EXCEPT ALL
        SELECT c.region, count(*), sum(o.amount) FROM inc_orders o JOIN inc_custs c ON c.id = o.cust GROUP BY 1) d)
     + (SELECT count(*) FROM (SELECT c.region, count(*), sum(o.amount) FROM inc_orders o JOIN inc_custs c ON c.id = o.cust GROUP BY 1
        EXCEPT ALL SELECT * FROM inc_by_region) d) AS differences;
-- The log rows it took in are gone; nothing to do the next time.
SELECT count(*) AS log_rows FROM matviews.changes;
SELECT r->'response'->'incremental' AS incremental FROM matviews.refresh('inc_by_region') r;
-- The run record says incremental.
SELECT operation, strategy, status FROM matviews.runs WHERE view = 'public.inc_by_region' ORDER BY id DESC LIMIT 1;

-- Changes in a transaction that refreshes and then writes again: the second write is taken in
-- by the next refresh.
BEGIN;
UPDATE inc_orders SET amount = amount + 1 WHERE id = 1;
SELECT r->'response'->'incremental'->>'changes' AS changes FROM matviews.refresh('inc_by_region') r;
UPDATE inc_orders SET amount = amount + 100 WHERE id = 2;
COMMIT;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_by_region') r;
SELECT total = (SELECT sum(amount) FROM inc_orders o JOIN inc_custs c ON c.id = o.cust WHERE c.region = r.region) AS right_total
FROM inc_by_region r ORDER BY region;

-- Fallbacks: TRUNCATE, DDL on a base table, too many keys, a dropped capture trigger.
TRUNCATE inc_orders;
INSERT INTO inc_orders SELECT g, g % 10 + 1, g, 'open' FROM generate_series(1, 30) g;
SELECT r->'response'->>'fallback' AS fallback, r->'response'->>'full_refresh' AS full_refresh
FROM matviews.refresh('inc_by_region') r;
ALTER TABLE inc_custs ADD COLUMN note text;
UPDATE inc_custs SET note = 'x' WHERE id = 1;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_by_region') r;
SET matviews.incremental_max_fraction = 0.1;
UPDATE inc_custs SET region = 'south' WHERE id IN (1, 2);
SELECT r->'response'->>'fallback' LIKE 'the changes affect 3 keys, more than matviews.incremental_max_fraction (0.1) of the view''s % estimated rows' AS too_many_keys
FROM matviews.refresh('inc_by_region') r;
SET matviews.incremental_max_fraction = 1;
DROP TRIGGER matviews_capture_upd ON inc_orders;
UPDATE inc_orders SET amount = 1 WHERE id = 1;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_by_region') r;
SELECT count(*) AS capture_triggers_back FROM pg_trigger
WHERE tgrelid = 'inc_orders'::regclass AND tgname LIKE 'matviews_capture%';
SELECT * FROM inc_by_region ORDER BY region;

-- Refusals: a view that is not managed, a managed view of another strategy.
CREATE MATERIALIZED VIEW inc_plain AS SELECT id FROM inc_custs;
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message, r->'error'->>'hint' AS hint
FROM matviews.refresh('inc_plain', strategy => 'incremental') r;
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message, r->'error'->>'hint' AS hint
FROM matviews.refresh('inc_nokey', strategy => 'incremental') r;
SELECT r->>'status' AS status FROM matviews.refresh('inc_by_region', strategy => 'regular') r;

-- Other shapes of the supported class: LEFT JOIN, UNION ALL, DISTINCT, a self-join, through a
-- plain view, a partitioned table.
CREATE TABLE inc_emp (id int PRIMARY KEY, manager int, name text);
INSERT INTO inc_emp VALUES (1, NULL, 'boss'), (2, 1, 'ann'), (3, 1, 'bob'), (4, 2, 'cid');
CREATE VIEW inc_orders_v AS SELECT id, cust, amount FROM inc_orders WHERE status = 'open';
CREATE TABLE inc_part (id int, grp int, v int) PARTITION BY RANGE (id);
CREATE TABLE inc_part_1 PARTITION OF inc_part FOR VALUES FROM (0) TO (100);
CREATE TABLE inc_part_2 PARTITION OF inc_part FOR VALUES FROM (100) TO (200);
INSERT INTO inc_part SELECT g, g % 5, g FROM generate_series(1, 150) g;
SELECT name, r->>'status' AS status FROM (VALUES
  ('inc_left', 'SELECT o.id, o.amount, COALESCE(c.name, ''?'') AS name FROM inc_orders o LEFT JOIN inc_custs c ON c.id = o.cust', '{id}'),
  ('inc_union', 'SELECT id, ''order'' AS kind, amount::text AS v FROM inc_orders UNION ALL SELECT id, ''cust'', name FROM inc_custs', '{id,kind}'),
  ('inc_distinct', 'SELECT DISTINCT cust, status FROM inc_orders', '{cust,status}'),
  ('inc_self', 'SELECT e.id, e.name, m.name AS manager FROM inc_emp e LEFT JOIN inc_emp m ON m.id = e.manager', '{id}'),
  ('inc_through_view', 'SELECT cust, sum(amount) AS total FROM inc_orders_v GROUP BY cust', '{cust}'),
  ('inc_partitioned', 'SELECT grp, count(*) AS n, sum(v) AS s FROM inc_part GROUP BY grp', '{grp}'),
  -- key columns from the nullable side: a match that comes or goes changes the key
  ('inc_left_key', 'SELECT o.id, COALESCE(c.name, ''none'') AS cname FROM inc_orders o LEFT JOIN inc_custs c ON c.id = o.cust', '{id,cname}'),
  ('inc_right_group', 'SELECT COALESCE(c.name, ''none'') AS cname, count(o.id) AS n FROM inc_custs c RIGHT JOIN inc_orders o ON c.id = o.cust GROUP BY 1', '{cname}')
) AS v(name, q, k),
LATERAL matviews.create(name, q, refresh_strategy => 'incremental', unique_index_columns => k::text[]) r;
SELECT name, r->'response'->>'fallback' AS fallback
FROM unnest('{inc_left,inc_union,inc_distinct,inc_self,inc_through_view,inc_partitioned,inc_left_key,inc_right_group}'::text[]) name,
LATERAL matviews.refresh(name) r;
UPDATE inc_orders SET status = 'closed', cust = 2 WHERE id = 3;
UPDATE inc_custs SET name = 'renamed' WHERE id = 4;
DELETE FROM inc_custs WHERE id = 9;
INSERT INTO inc_custs VALUES (11, 'c11', 'east');
UPDATE inc_orders SET cust = 11 WHERE id = 20;
UPDATE inc_emp SET name = 'ANN' WHERE id = 2;
INSERT INTO inc_emp VALUES (5, 4, 'dee');
INSERT INTO inc_part VALUES (120, 1, 1000);
UPDATE inc_part_1 SET grp = 4 WHERE id = 1;
DELETE FROM inc_part WHERE id = 149;
SELECT name, r->'response'->>'fallback' AS fallback,
       (r->'response'->'incremental'->>'keys')::int > 0 AS recomputed
FROM unnest('{inc_by_region,inc_left,inc_union,inc_distinct,inc_self,inc_through_view,inc_partitioned,inc_left_key,inc_right_group}'::text[]) name,
LATERAL matviews.refresh(name) r;
CREATE FUNCTION inc_diff(v regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint; q text := pg_get_viewdef(v);
BEGIN
  EXECUTE format('SELECT (SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM (%s) q) a)
                       + (SELECT count(*) FROM (SELECT * FROM (%s) q EXCEPT ALL SELECT * FROM %s) b)',
                 v, rtrim(q, ';'), rtrim(q, ';'), v) INTO n;
  RETURN n;
END $$;
SELECT name, inc_diff(name::regclass) AS differences
FROM unnest('{inc_by_region,inc_left,inc_union,inc_distinct,inc_self,inc_through_view,inc_partitioned,inc_left_key,inc_right_group}'::text[]) name;

-- Rights. A writer needs no privilege on matviews.*: its statement is captured all the same.
CREATE ROLE inc_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON inc_emp TO inc_writer;
SET ROLE inc_writer;
UPDATE inc_emp SET name = 'cid2' WHERE id = 4;
SELECT count(*) FROM matviews.changes;  -- the log is not the writer's to read
RESET ROLE;
SELECT kind, new_rows FROM matviews.changes WHERE relid = 'inc_emp'::regclass;
SELECT r->'response'->'incremental'->>'changes' AS changes FROM matviews.refresh('inc_self') r;
SELECT inc_diff('inc_self') AS differences;
-- The capture function is a trigger function only, and only AFTER ... FOR EACH STATEMENT.
SELECT matviews._capture();
CREATE TABLE inc_row (a int);
CREATE TRIGGER inc_row_trg AFTER INSERT ON inc_row FOR EACH ROW EXECUTE FUNCTION matviews._capture();
INSERT INTO inc_row VALUES (1);
-- An owner without TRIGGER on a table its view reads cannot make the view incremental.
CREATE ROLE inc_owner;
GRANT CREATE ON SCHEMA public TO inc_owner;
GRANT SELECT ON inc_custs TO inc_owner;
SET ROLE inc_owner;
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message, r->'error'->>'hint' AS hint
FROM matviews.create('inc_owned', 'SELECT id, name FROM inc_custs', refresh_strategy => 'incremental',
                     unique_index_columns => '{id}') r;
RESET ROLE;
SELECT count(*) AS created FROM pg_class WHERE relname = 'inc_owned';

-- What a role that owns a type, a table or a view can do with the capture and the derivation.
-- A cast to json on a type is never called: the capture writes each value's output text.
CREATE TYPE inc_mood AS ENUM ('happy', 'sad');
CREATE TABLE inc_cast_log (who text);
CREATE FUNCTION inc_mood_json(inc_mood) RETURNS json LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO inc_cast_log VALUES (current_user); RETURN to_json($1::text); END$$;
CREATE CAST (inc_mood AS json) WITH FUNCTION inc_mood_json(inc_mood);
CREATE TABLE inc_typed (id int PRIMARY KEY, m inc_mood, a int[], f float8, t timestamptz);
SELECT r->>'status' AS status FROM matviews.create('inc_typed_v',
  'SELECT id, m, a, f, t FROM inc_typed', refresh_strategy => 'incremental', unique_index_columns => '{id}') r;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_typed_v') r;
INSERT INTO inc_typed VALUES (1, 'happy', '[0:1]={1,2}', 0.1 + 0.2, '2026-01-02 03:04:05.123456+02');
SET extra_float_digits = -3;
UPDATE inc_typed SET f = f * 3 WHERE id = 1;
RESET extra_float_digits;
SELECT count(*) AS casts_run FROM inc_cast_log;
SELECT r->'response'->'incremental'->>'changes' AS changes FROM matviews.refresh('inc_typed_v') r;
SELECT inc_diff('inc_typed_v') AS differences, (SELECT a FROM inc_typed_v) AS lower_bound_kept;
-- A partition read directly: a write through its partitioned table is captured too.
SELECT r->>'status' AS status FROM matviews.create('inc_one_part',
  'SELECT id, v FROM inc_part_1', refresh_strategy => 'incremental', unique_index_columns => '{id}') r;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_one_part') r;
UPDATE inc_part SET v = -1 WHERE id = 2;
INSERT INTO inc_part VALUES (0, 0, 99);
SELECT r->>'status' AS status, r->'error'->>'message' AS error, r->'response'->>'fallback' AS fallback,
       r->'response'->'incremental'->>'changes' AS changes
FROM matviews.refresh('inc_one_part') r;
SELECT inc_diff('inc_one_part') AS differences;
-- Rights the derivation would bypass: refused with a reason each.
CREATE ROLE inc_viewer;
GRANT CREATE ON SCHEMA public TO inc_viewer;
CREATE TABLE inc_secret (id int PRIMARY KEY, tenant text, secret text);
GRANT SELECT (id, tenant), TRIGGER ON inc_secret TO inc_viewer;
CREATE TABLE inc_rls (id int PRIMARY KEY, tenant text);
ALTER TABLE inc_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY inc_rls_own ON inc_rls USING (tenant = current_user);
GRANT SELECT, TRIGGER ON inc_rls TO inc_viewer;
CREATE VIEW inc_barrier WITH (security_barrier) AS SELECT id, tenant FROM inc_rls WHERE tenant = 'x';
CREATE VIEW inc_someone_elses AS SELECT id, tenant FROM inc_rls;
GRANT SELECT ON inc_barrier, inc_someone_elses TO inc_viewer;
SET ROLE inc_viewer;
SELECT q AS query, matviews.explain(sql => q)->'strategies'->'incremental'->'reasons' AS reasons
FROM unnest(ARRAY['SELECT id, tenant FROM inc_secret', 'SELECT id, tenant FROM inc_rls',
                  'SELECT id, tenant FROM inc_barrier', 'SELECT id, tenant FROM inc_someone_elses']) q;
RESET ROLE;
-- A trigger of matviews' name that would not capture is an error, never a silent gap; a
-- disabled one too; so is a trigger of another name calling the capture function.
ALTER TABLE inc_typed DISABLE TRIGGER matviews_capture_upd;
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message, r->'error'->>'hint' AS hint
FROM matviews.refresh('inc_typed_v') r;
ALTER TABLE inc_typed ENABLE TRIGGER matviews_capture_upd;
CREATE TRIGGER inc_forge AFTER INSERT ON inc_row REFERENCING NEW TABLE AS mv_new
  FOR EACH STATEMENT EXECUTE FUNCTION matviews._capture();
DROP TRIGGER inc_row_trg ON inc_row;
INSERT INTO inc_row VALUES (2);
DROP TRIGGER inc_forge ON inc_row;
-- An incremental refresh reads the changes in one snapshot of its own: not in REPEATABLE READ.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.refresh('inc_typed_v') r;
COMMIT;

-- A statement of more rows than a log row holds, spilled to disk (work_mem), is logged in chunks.
CREATE TABLE inc_big (id int PRIMARY KEY, pad text);
INSERT INTO inc_big SELECT g, repeat('x', 200) FROM generate_series(1, 25000) g;
SELECT r->>'status' AS status FROM matviews.create('inc_big_v', 'SELECT id, length(pad) AS len FROM inc_big',
  refresh_strategy => 'incremental', unique_index_columns => '{id}') r;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_big_v') r;
SET work_mem = '64kB';
UPDATE inc_big SET pad = pad || 'y';
RESET work_mem;
SELECT kind, count(*) AS log_rows FROM matviews.changes WHERE relid = 'inc_big'::regclass GROUP BY kind;
SELECT r->'response'->'incremental' AS incremental FROM matviews.refresh('inc_big_v') r;
SELECT inc_diff('inc_big_v') AS differences;
-- A json column the query reads is refused (it is logged as its text); a redefined function the
-- query calls makes the next refresh a full one.
CREATE TABLE inc_docs (id int PRIMARY KEY, doc json, other json);
SELECT matviews.explain(sql => 'SELECT id, doc::text AS d FROM inc_docs')->'strategies'->'incremental'->'reasons' AS reasons;
SELECT matviews.explain(sql => 'SELECT id FROM inc_docs')->'strategies'->'incremental'->'reasons' AS reasons;
CREATE FUNCTION inc_twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
SELECT r->>'status' AS status FROM matviews.create('inc_fn_v', 'SELECT id, inc_twice(id) AS t FROM inc_docs',
  refresh_strategy => 'incremental', unique_index_columns => '{id}') r;
INSERT INTO inc_docs SELECT g, '{"a":1}', NULL FROM generate_series(1, 5) g;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_fn_v') r;
CREATE OR REPLACE FUNCTION inc_twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 3';
UPDATE inc_docs SET other = '{"b": 2}' WHERE id = 1;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_fn_v') r;
SELECT inc_diff('inc_fn_v') AS differences;

-- The strategy changed away from incremental: the definition forgets its capture; delete too.
SELECT r->>'status' AS status FROM matviews.alter('inc_distinct', refresh_strategy => 'concurrent') r;
SELECT inc_snapshot IS NULL AS no_snapshot, inc_relids IS NULL AS no_tables
FROM matviews.definitions WHERE view_name = 'inc_distinct';
SELECT r->>'status' AS status FROM matviews.alter('inc_distinct', refresh_strategy => 'incremental') r;
SELECT r->'response'->>'fallback' AS fallback FROM matviews.refresh('inc_distinct') r;

SELECT matviews.delete(name)->>'status' AS status
FROM unnest('{inc_big_v,inc_fn_v,inc_typed_v,inc_one_part,inc_by_region,inc_nokey,inc_left,inc_union,inc_distinct,inc_self,inc_through_view,inc_partitioned,inc_left_key,inc_right_group}'::text[]) name;
DROP MATERIALIZED VIEW inc_other, inc_plain;
DROP VIEW inc_barrier, inc_someone_elses;
DROP TABLE inc_big, inc_docs;
DROP FUNCTION inc_twice(int);
DROP TABLE inc_row, inc_orders, inc_custs, inc_emp, inc_part, inc_typed, inc_cast_log, inc_secret, inc_rls CASCADE;
DROP CAST (inc_mood AS json);
DROP FUNCTION inc_mood_json(inc_mood);
DROP TYPE inc_mood;
DROP FOREIGN TABLE inc_foreign;
DROP SERVER inc_server;
DROP FOREIGN DATA WRAPPER inc_fdw;
DROP FUNCTION inc_rows(), inc_diff(regclass);
DROP OWNED BY inc_writer, inc_owner, inc_viewer;
DROP ROLE inc_writer, inc_owner, inc_viewer;
RESET matviews.incremental_max_fraction;
