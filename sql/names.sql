-- Names: quoted, mixed-case and non-public-schema names are parsed like '...'::regclass, an
-- unqualified create goes into the first existing schema of search_path, every invalid form is
-- refused with 42602, and every response names the view as quote_ident(schema).quote_ident(name).

CREATE SCHEMA reporting;
CREATE TABLE names_src (id int PRIMARY KEY, v text);
INSERT INTO names_src VALUES (1, 'a'), (2, 'b');

-- Qualified, quoted and mixed-case names; the response quotes each part only when needed.
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('reporting.mv_users', 'SELECT id, v FROM public.names_src') r;
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('"Mixed Case"', 'SELECT id FROM names_src') r;
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('reporting."Odd ""name"""', 'SELECT id FROM public.names_src') r;
-- Unquoted parts fold to lower case, white space around the parts is allowed.
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('  Reporting . MV_Upper  ', 'SELECT 1 AS x') r;
-- Reserved words and names that need quoting are quoted in the response.
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('"select"', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('"with.dot"', 'SELECT 1 AS x') r;

-- The relations PostgreSQL holds, under exactly those names.
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND n.nspname IN ('public', 'reporting')
  AND c.relname IN ('mv_users', 'Mixed Case', 'Odd "name"', 'mv_upper', 'select', 'with.dot')
ORDER BY 1, 2;
SELECT schema_name, view_name FROM matviews.definitions
WHERE view_name IN ('mv_users', 'Mixed Case', 'Odd "name"', 'mv_upper', 'select', 'with.dot')
ORDER BY 1, 2;

-- Every operation accepts the same forms and answers with the same quoted name.
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.refresh('"Mixed Case"') r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.refresh('REPORTING."Odd ""name"""') r;
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.alter('reporting."Odd ""name"""', enabled => false) r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.refresh('public."select"') r;
-- "Mixed Case" unquoted means mixed case folded: a different (missing) view.
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('Mixed Case') r;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('mixed_case') r;

-- A name that parses but names no view is still shown normalized: folded and quoted.
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate,
       r->'error'->>'message' AS message
FROM matviews.refresh('Reporting.MV_Missing') r;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.delete(' "Odd Missing" ', if_exists => false) r;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.alter('REPORTING."x"', enabled => true) r;
SELECT view, status FROM matviews.runs WHERE view IN ('reporting.mv_missing', '"Odd Missing"', 'reporting.x') ORDER BY id;
-- A relation of another kind is shown by its resolved name.
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('NAMES_SRC') r;

-- Unqualified names of existing views resolve through search_path.
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.refresh('mv_users') r;
SET search_path = reporting, public;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.refresh('mv_users') r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.refresh('"Odd ""name"""') r;
RESET search_path;

-- An unqualified create goes into the first existing schema of search_path.
SET search_path = no_such_schema, reporting, public;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.create('mv_first', 'SELECT 1 AS x') r;
SELECT to_regclass('reporting.mv_first') IS NOT NULL AS in_reporting,
       to_regclass('public.mv_first') IS NULL AS not_in_public;
RESET search_path;

-- Quoted search_path entries.
CREATE SCHEMA "My Schema";
SET search_path = "My Schema", public;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.create('mv_quoted', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.refresh('mv_quoted') r;
RESET search_path;
SELECT to_regclass('"My Schema".mv_quoted') IS NOT NULL AS in_my_schema;

-- $user: the schema named like the current user comes first when it exists.
CREATE ROLE mv_names_user;
GRANT CREATE ON SCHEMA public TO mv_names_user;
SET ROLE mv_names_user;
SET search_path = "$user", public;
-- No schema mv_names_user yet: the view goes to public.
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.create('mv_dollar_user', 'SELECT 1 AS x') r;
RESET ROLE;
CREATE SCHEMA mv_names_user AUTHORIZATION mv_names_user;
SET ROLE mv_names_user;
SET search_path = "$user", public;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.create('mv_dollar_user', 'SELECT 2 AS x') r;
-- Unqualified lookups use $user too: refresh and delete find the one in mv_names_user first.
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.refresh('mv_dollar_user') r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.delete('mv_dollar_user') r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.delete('mv_dollar_user') r;
SELECT r->>'status' AS status, r->>'view' AS view, r->'response'->>'reason' AS reason
FROM matviews.delete('mv_dollar_user') r;
RESET search_path;
RESET ROLE;

-- A schema without USAGE for the caller is skipped, as PostgreSQL skips it.
CREATE SCHEMA mv_private;
SET ROLE mv_names_user;
SET search_path = mv_private, public;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.create('mv_skip_private', 'SELECT 1 AS x') r;
SELECT r->>'status' AS status, r->>'view' AS view FROM matviews.delete('mv_skip_private') r;
RESET search_path;
RESET ROLE;

-- No existing schema in search_path: 3F000, and nothing is created.
SET search_path = '';
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.create('mv_nowhere', 'SELECT 1 AS x') r;
SET search_path = no_such_schema, "$user";
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.create('mv_nowhere', 'SELECT 1 AS x') r;
RESET search_path;
-- A qualified name in a missing schema: 3F000 as well.
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.create('no_such_schema.mv_nowhere', 'SELECT 1 AS x') r;
SELECT count(*) AS nothing_created FROM pg_class WHERE relname = 'mv_nowhere';
SELECT count(*) AS no_definition FROM matviews.definitions WHERE view_name = 'mv_nowhere';

-- Every invalid form: 42602, from every function, and nothing created.
CREATE TABLE names_bad (name text, ord serial);
INSERT INTO names_bad (name) VALUES
    (''), ('   '), ('""'), ('"abc'), ('abc"'), ('"a""'), ('a.b.c'), ('a..b'), ('.a'), ('a.'),
    ('a-b'), ('1abc'), ('a b'), ('a;b'), ('"a"b'), ('a"b"'), ('x.""'),
    (repeat('a', 64)), ('reporting.' || repeat('b', 64)), (repeat('c', 64) || '.x'),
    ('"' || repeat('é', 32) || '"'), ('mv_users; DROP TABLE names_src');
SELECT b.ord, length(b.name) AS len,
       c->>'status' AS create_status, c->'error'->>'sqlstate' AS create_state,
       f->'error'->>'sqlstate' AS refresh_state,
       d->'error'->>'sqlstate' AS delete_state,
       a->'error'->>'sqlstate' AS alter_state,
       p->'error'->>'sqlstate' AS adopt_state
FROM names_bad b,
     matviews.create(b.name, 'SELECT 1 AS x') c,
     matviews.refresh(b.name) f,
     matviews.delete(b.name) d,
     matviews.alter(b.name, enabled => true) a,
     matviews.adopt(b.name) p
ORDER BY b.ord;
-- The error names the problem.
SELECT b.ord, r->'error'->>'message' AS message, r->'error'->>'detail' AS detail
FROM names_bad b, matviews.refresh(b.name) r
WHERE b.ord <= 17 ORDER BY b.ord;
SELECT r->'error'->>'hint' AS hint FROM matviews.refresh('a-b') r;
-- The injection attempt did nothing.
SELECT count(*) AS names_src_rows FROM names_src;

-- 63 bytes is the limit: a 63-byte name is fine (also in multi-byte characters).
SELECT r->>'status' AS status, length(r->>'view') AS view_len
FROM matviews.create(repeat('n', 63), 'SELECT 1 AS x') r;
SELECT r->>'status' AS status, r->>'view' AS view
FROM matviews.create('"' || repeat('é', 31) || 'z"', 'SELECT 1 AS x') r;
SELECT octet_length(relname) AS bytes FROM pg_class WHERE relname = repeat('é', 31) || 'z';

-- A 63-byte view name with unique_index_columns: a deterministic index name of at most 63 bytes.
SELECT r->>'status' AS status, length(r->'response'->>'index') AS index_len
FROM matviews.create(repeat('n', 63), 'SELECT id, v FROM names_src', unique_index_columns => ARRAY['id', 'v'],
                     force => true) r;
CREATE TEMP TABLE names_index AS
SELECT indexname, length(indexname) AS len FROM pg_indexes WHERE tablename = repeat('n', 63);
SELECT len, indexname LIKE 'nnnn%_key' AS shape FROM names_index;
-- Created again: the same name.
SELECT r->>'status' AS status, r->'response'->>'index' = (SELECT indexname FROM names_index) AS same_index
FROM matviews.create(repeat('n', 63), 'SELECT id, v FROM names_src', unique_index_columns => ARRAY['id', 'v'],
                     force => true) r;
SELECT indexname = (SELECT indexname FROM names_index) AS same_name, indexdef LIKE 'CREATE UNIQUE INDEX%' AS is_unique
FROM pg_indexes WHERE tablename = repeat('n', 63);
-- Another column list gets another name.
SELECT r->'response'->>'index' <> (SELECT indexname FROM names_index) AS other_name,
       length(r->'response'->>'index') AS len
FROM matviews.create(repeat('n', 63), 'SELECT id, v FROM names_src', unique_index_columns => ARRAY['id'],
                     force => true) r;
-- Concurrent refresh uses it.
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy
FROM matviews.refresh(repeat('n', 63), strategy => 'concurrent') r;

-- The runs name the views the same way.
SELECT DISTINCT view FROM matviews.runs
WHERE view IN ('reporting.mv_users', 'public."Mixed Case"', 'reporting."Odd ""name"""', 'public."select"',
               'public."with.dot"', '"My Schema".mv_quoted', 'mv_names_user.mv_dollar_user')
ORDER BY 1;

-- Clean up.
SELECT r->>'status' AS status, r->>'view' AS view
FROM (VALUES (1, 'reporting.mv_users'), (2, '"Mixed Case"'), (3, 'reporting."Odd ""name"""'),
             (4, 'reporting.mv_upper'), (5, '"select"'), (6, '"with.dot"'), (7, 'reporting.mv_first'),
             (8, '"My Schema".mv_quoted'), (9, repeat('n', 63)), (10, '"' || repeat('é', 31) || 'z"')) v(i, n),
     matviews.delete(v.n) r
ORDER BY v.i;
SELECT count(*) AS left_over FROM matviews.definitions
WHERE schema_name IN ('reporting', 'My Schema', 'mv_names_user')
   OR view_name IN ('Mixed Case', 'select', 'with.dot', 'mv_dollar_user', 'mv_skip_private');
DROP SCHEMA reporting, "My Schema", mv_private;
DROP SCHEMA mv_names_user;
DROP TABLE names_src, names_bad;
REVOKE CREATE ON SCHEMA public FROM mv_names_user;
DROP ROLE mv_names_user;
