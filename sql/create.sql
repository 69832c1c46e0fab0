-- matviews.create: every option (force, with_data, unique_index_columns, refresh_strategy,
-- row_count_strategy), skipped when the view or its definition is there, the SQL run listed in
-- order, and every refusal with its SQLSTATE, after which nothing exists.

CREATE TABLE create_src (id int PRIMARY KEY, grp int, v text);
INSERT INTO create_src SELECT g, g % 3, 'v' || g FROM generate_series(1, 10) g;
-- The response without run_id, duration_ms and the definition id.
CREATE FUNCTION create_stable(r jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT mvtest_stable(r) #- '{response,definition_id}'
$$;
-- What exists under a name: relation kind, populated, definition.
CREATE FUNCTION create_state(n text) RETURNS TABLE (relkind "char", populated boolean, managed boolean)
LANGUAGE sql AS $$
    SELECT c.relkind, c.relispopulated,
           EXISTS (SELECT 1 FROM matviews.definitions d WHERE d.schema_name = 'public' AND d.view_name = n)
    FROM (SELECT 1) one
    LEFT JOIN pg_class c ON c.oid = to_regclass(pg_catalog.quote_ident(n))
$$;

-- A plain create: the whole response.
SELECT jsonb_pretty(create_stable(r)) FROM matviews.create('mv_c1', 'SELECT id, v FROM create_src') r;
SELECT * FROM create_state('mv_c1');
SELECT count(*) FROM mv_c1;
SELECT schema_name, view_name, sql, refresh_strategy, unique_index_columns, options, enabled,
       owner = current_user AS owner_is_me, search_path
FROM matviews.definitions WHERE view_name = 'mv_c1';
SELECT operation, strategy, status, trigger, definition_id IS NOT NULL AS has_definition,
       row_count_before, row_count_after, error, role = current_user AS role_is_me
FROM matviews.runs WHERE view = 'public.mv_c1' ORDER BY id;

-- Already there: skipped, nothing run, the definition untouched.
SELECT r->>'status' AS status, r->'response'->>'reason' AS reason, r->'response'->>'hint' AS hint,
       r->'response'->'sql' AS sql
FROM matviews.create('mv_c1', 'SELECT 42 AS other') r;
SELECT sql FROM matviews.definitions WHERE view_name = 'mv_c1';
-- An unmanaged materialized view of that name: skipped, with a hint to adopt it.
CREATE MATERIALIZED VIEW mv_c_plain AS SELECT 1 AS x;
SELECT r->>'status' AS status, r->'response'->>'reason' AS reason, r->'response'->>'hint' AS hint
FROM matviews.create('mv_c_plain', 'SELECT 2 AS x') r;
SELECT * FROM create_state('mv_c_plain');
-- A definition whose view was dropped behind matviews' back: skipped too.
CREATE MATERIALIZED VIEW mv_c_gone AS SELECT 1 AS x;
SELECT r->>'status' AS status FROM matviews.adopt('mv_c_gone') r;
DROP MATERIALIZED VIEW mv_c_gone;
SELECT r->>'status' AS status, r->'response'->>'reason' AS reason, r->'response'->>'hint' AS hint
FROM matviews.create('mv_c_gone', 'SELECT 2 AS x') r;

-- force: drop and recreate, with the new query; the response lists the SQL in order.
SELECT r->>'status' AS status, r->'response'->'sql' AS sql
FROM matviews.create('mv_c1', 'SELECT id, grp FROM create_src WHERE grp = 1', force => true) r;
SELECT sql FROM matviews.definitions WHERE view_name = 'mv_c1';
SELECT count(*) FROM mv_c1;
SELECT r->>'status' AS status, r->'response'->'sql' AS sql
FROM matviews.create('mv_c_plain', 'SELECT 2 AS x', force => true) r;
SELECT * FROM mv_c_plain;
SELECT r->>'status' AS status, r->'response'->'sql' AS sql
FROM matviews.create('mv_c_gone', 'SELECT 3 AS x', force => true) r;
SELECT * FROM mv_c_gone;
SELECT count(*) AS one_definition FROM matviews.definitions WHERE view_name = 'mv_c_gone';
-- force never drops a relation that is not a materialized view: 42P07, with or without force.
CREATE TABLE mv_c_table (x int);
CREATE VIEW mv_c_view AS SELECT 1 AS x;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.create('mv_c_table', 'SELECT 1 AS x', force => true) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.create('mv_c_table', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.create('mv_c_view', 'SELECT 1 AS x', force => true) r;
SELECT * FROM create_state('mv_c_table'), create_state('mv_c_view') v;
-- force on a view others depend on: PostgreSQL's own refusal (2BP01); the old view stays.
CREATE VIEW mv_c1_dep AS SELECT * FROM mv_c1;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_c1', 'SELECT 1 AS id', force => true) r;
SELECT sql FROM matviews.definitions WHERE view_name = 'mv_c1';
SELECT count(*) FROM mv_c1;
DROP VIEW mv_c1_dep;

-- with_data => false: created unpopulated, row counts null whatever the strategy.
SELECT r->>'status' AS status, r->'response'->>'populated' AS populated,
       r->'response'->'row_count_after' AS row_count_after, r->'response'->'sql'->>0 AS sql
FROM matviews.create('mv_c_nodata', 'SELECT id FROM create_src', with_data => false,
                     row_count_strategy => 'exact') r;
SELECT * FROM create_state('mv_c_nodata');

-- unique_index_columns: a unique index on those columns, named in the response.
SELECT r->>'status' AS status, r->'response'->>'index' AS index, r->'response'->'sql'->>1 AS index_sql
FROM matviews.create('mv_c_idx', 'SELECT id, grp, v FROM create_src', unique_index_columns => ARRAY['grp', 'id']) r;
SELECT i.indexrelid::regclass AS index, i.indisunique, i.indisvalid, i.indpred IS NULL AS not_partial,
       pg_get_indexdef(i.indexrelid) AS def
FROM pg_index i WHERE i.indrelid = 'mv_c_idx'::regclass;
SELECT unique_index_columns FROM matviews.definitions WHERE view_name = 'mv_c_idx';
-- Quoted column names are quoted in the index.
SELECT r->>'status' AS status, r->'response'->>'index' AS index, r->'response'->'sql'->>1 AS index_sql
FROM matviews.create('mv_c_idx2', 'SELECT id AS "User Id" FROM create_src', unique_index_columns => ARRAY['User Id']) r;
-- A column that does not exist: PostgreSQL's error (42703), and the view is not left behind.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.create('mv_c_badcol', 'SELECT id FROM create_src', unique_index_columns => ARRAY['nope']) r;
SELECT * FROM create_state('mv_c_badcol');
-- Columns whose values repeat: 23505, nothing left behind.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_c_dup', 'SELECT grp FROM create_src', unique_index_columns => ARRAY['grp']) r;
SELECT * FROM create_state('mv_c_dup');
-- An empty list: 22023.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.create('mv_c_dup', 'SELECT grp FROM create_src', unique_index_columns => ARRAY[]::text[]) r;
-- An index name already taken by another relation's index is not silently reused.
CREATE INDEX mv_c_taken_id_key ON create_src (v);
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.create('mv_c_taken', 'SELECT id FROM create_src', unique_index_columns => ARRAY['id']) r;
SELECT * FROM create_state('mv_c_taken');
SELECT indrelid::regclass AS still_on FROM pg_index WHERE indexrelid = 'mv_c_taken_id_key'::regclass;
DROP INDEX mv_c_taken_id_key;

-- refresh_strategy: concurrent needs unique_index_columns (22023); with them it is stored.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.create('mv_c_conc', 'SELECT id FROM create_src', refresh_strategy => 'concurrent') r;
SELECT * FROM create_state('mv_c_conc');
SELECT r->>'status' AS status, r->'request'->>'refresh_strategy' AS strategy
FROM matviews.create('mv_c_conc', 'SELECT id FROM create_src', refresh_strategy => 'concurrent',
                     unique_index_columns => ARRAY['id']) r;
SELECT refresh_strategy FROM matviews.definitions WHERE view_name = 'mv_c_conc';
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy FROM matviews.refresh('mv_c_conc') r;
-- swap is a valid strategy to store.
SELECT r->>'status' AS status FROM matviews.create('mv_c_swap', 'SELECT 1 AS x', refresh_strategy => 'swap') r;
-- Anything else: 22023.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.create('mv_c_bad', 'SELECT 1 AS x', refresh_strategy => 'fast') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_c_bad', 'SELECT 1 AS x', refresh_strategy => 'Regular') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_c_bad', 'SELECT 1 AS x', refresh_strategy => NULL) r;

-- row_count_strategy: none (default), estimated (null until statistics exist), exact.
SELECT r->'request'->>'row_count_strategy' AS strategy, r->'response'->'row_count_after' AS after
FROM matviews.create('mv_c_rc1', 'SELECT id FROM create_src') r;
SELECT r->'request'->>'row_count_strategy' AS strategy, r->'response'->'row_count_after' AS after
FROM matviews.create('mv_c_rc2', 'SELECT id FROM create_src', row_count_strategy => 'exact') r;
-- A new view has no statistics yet: the estimate is null.
SELECT r->'request'->>'row_count_strategy' AS strategy, r->'response'->'row_count_after' AS after
FROM matviews.create('mv_c_rc3', 'SELECT id FROM create_src', row_count_strategy => 'estimated') r;
SELECT row_count_after FROM matviews.runs WHERE view = 'public.mv_c_rc2';
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.create('mv_c_rc4', 'SELECT id FROM create_src', row_count_strategy => 'exactly') r;
SELECT * FROM create_state('mv_c_rc4');

-- The SQL is checked before anything is created: one query, nothing else.
CREATE TABLE create_bad_sql (ord serial, sql text);
INSERT INTO create_bad_sql (sql) VALUES
    ('SELECT 1; SELECT 2'),
    ('SELECT 1 AS x; DROP TABLE create_src'),
    (''),
    ('   '),
    (';'),
    ('-- only a comment'),
    ('INSERT INTO create_src VALUES (100, 1, ''x'') RETURNING *'),
    ('UPDATE create_src SET v = ''hacked'' RETURNING *'),
    ('DELETE FROM create_src RETURNING *'),
    ('SELECT * INTO create_copy FROM create_src'),
    ('WITH d AS (DELETE FROM create_src RETURNING *) SELECT * FROM d'),
    ('WITH u AS (UPDATE create_src SET v = ''hacked'' RETURNING *) SELECT * FROM u'),
    ('SELECT * FROM (WITH d AS (DELETE FROM create_src RETURNING *) SELECT * FROM d) s'),
    ('WITH x AS (SELECT 1) INSERT INTO create_src SELECT 100, 1, ''x'' FROM x'),
    ('CREATE TABLE create_evil (x int)'),
    ('DROP TABLE create_src'),
    ('TRUNCATE create_src'),
    ('EXPLAIN SELECT 1'),
    ('COMMIT'),
    ('SET search_path = evil'),
    ('SELEC 1'),
    ('SELECT 1 AS x) AS y WITH DATA; DROP TABLE create_src; --'),
    ('SELECT ''unterminated'),
    ('SELECT 1 AS x /* unterminated comment');
SELECT b.ord, r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'response'->'sql' AS sql_run
FROM create_bad_sql b, matviews.create('mv_c_refused_' || b.ord, b.sql) r ORDER BY b.ord;
SELECT r->'error'->>'hint' AS hint FROM matviews.create('mv_c_hint', 'SELECT 1; SELECT 2') r;
-- Nothing was created, and no statement ran.
SELECT count(*) AS relations FROM pg_class
WHERE relname LIKE 'mv_c_refused%' OR relname IN ('mv_c_hint', 'create_copy', 'create_evil');
SELECT count(*) AS definitions FROM matviews.definitions WHERE view_name LIKE 'mv_c_refused%';
SELECT count(*) AS rows, count(*) FILTER (WHERE v = 'hacked') AS hacked FROM create_src;
SELECT current_setting('search_path') AS search_path;
-- Each refusal is recorded as a failed run.
SELECT count(*) AS failed_runs FROM matviews.runs
WHERE view LIKE 'public.mv_c_refused%' AND operation = 'create' AND status = 'failed';

-- Accepted forms: WITH ... SELECT, VALUES, TABLE, a parenthesized query, a trailing semicolon,
-- a trailing comment, a leading comment.
CREATE TABLE create_good_sql (ord serial, sql text);
INSERT INTO create_good_sql (sql) VALUES
    ('WITH t AS (SELECT id FROM create_src) SELECT id FROM t'),
    ('VALUES (1, ''a''), (2, ''b'')'),
    ('TABLE create_src'),
    ('(SELECT id FROM create_src ORDER BY id LIMIT 3)'),
    ('SELECT id FROM create_src;'),
    (E'SELECT id FROM create_src;\n  '),
    ('SELECT id FROM create_src -- trailing comment'),
    (E'SELECT id FROM create_src; -- trailing comment\n'),
    ('SELECT id FROM create_src /* trailing block comment */'),
    (E'/* leading comment */ SELECT id\nFROM create_src\n-- comment\nWHERE id > 5'),
    ('SELECT id FROM create_src UNION SELECT 100');
SELECT b.ord, r->>'status' AS status, r->'error'->>'message' AS error
FROM create_good_sql b, matviews.create('mv_c_good_' || b.ord, b.sql) r ORDER BY b.ord;
-- The definition stores the query alone: no trailing semicolon, white space or wrapper.
SELECT b.ord, d.sql AS stored
FROM create_good_sql b JOIN matviews.definitions d ON d.view_name = 'mv_c_good_' || b.ord ORDER BY b.ord;
SELECT * FROM mv_c_good_10 ORDER BY 1;
-- The stored query recreates the view (force) with the same result.
SELECT r->>'status' AS status FROM create_good_sql b, matviews.create('mv_c_good_' || b.ord, b.sql, force => true) r;
SELECT count(*) FROM mv_c_good_7;

-- Injection through the name: an odd name is a name, nothing else runs.
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('"x""; DROP TABLE create_src; --"', 'SELECT 1 AS x') r;
SELECT relname FROM pg_class WHERE relname LIKE 'x"; DROP%';
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('"x""; DROP TABLE create_src; --"', 'SELECT 2 AS x', force => true) r;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('x; DROP TABLE create_src', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_c_inj', 'SELECT 1 AS x', unique_index_columns => ARRAY['x); DROP TABLE create_src; --']) r;
SELECT count(*) AS still_there FROM create_src;

-- refresh_strategy NULL means the default (regular).
SELECT refresh_strategy FROM matviews.definitions WHERE view_name = 'mv_c_bad';

-- A schedule given at create is validated before anything is created (22023, with the hint
-- showing both forms) and stored in canonical form.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'hint' AS hint
FROM matviews.create('mv_c_sched', 'SELECT 1 AS x', schedule => 'every now and then') r;
SELECT * FROM create_state('mv_c_sched');
SELECT r->>'status' AS status, r->'response'->>'schedule' AS schedule
FROM matviews.create('mv_c_sched', 'SELECT 1 AS x', schedule => '5 minutes') r;
SELECT * FROM create_state('mv_c_sched');
SELECT schedule FROM matviews.definitions WHERE view_name = 'mv_c_sched';

-- Clean up.
SELECT r->>'status' AS status, count(*)
FROM (SELECT view_name FROM matviews.definitions WHERE view_name LIKE 'mv\_c%' OR view_name LIKE 'x"%') d,
     matviews.delete(pg_catalog.quote_ident(d.view_name)) r
GROUP BY 1;
SELECT count(*) AS left_over FROM pg_class WHERE relname LIKE 'mv\_c%' AND relkind = 'm';
DROP TABLE create_src, create_bad_sql, create_good_sql, mv_c_table;
DROP VIEW mv_c_view;
DROP FUNCTION create_stable(jsonb), create_state(text);
