-- matviews.alter changes a definition's settings (refresh_strategy, unique_index_columns and the
-- managed index, options, enabled); matviews.adopt brings an existing view under management
-- without rebuilding it.

CREATE TABLE alter_src (id int PRIMARY KEY, grp int, v text);
INSERT INTO alter_src SELECT g, g % 3, 'v' || g FROM generate_series(1, 6) g;
-- The view's indexes, as PostgreSQL shows them.
CREATE FUNCTION alter_indexes(n text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = to_regclass(n) ORDER BY 1
$$;
-- The definition's settings.
CREATE FUNCTION alter_def(n text)
RETURNS TABLE (refresh_strategy text, unique_index_columns text[], options jsonb, enabled boolean)
LANGUAGE sql AS $$
    SELECT refresh_strategy, unique_index_columns, options, enabled
    FROM matviews.definitions WHERE schema_name = 'public' AND view_name = n
$$;

SELECT r->>'status' AS status FROM matviews.create('mv_al', 'SELECT id, grp, v FROM alter_src') r;

-- refresh_strategy: concurrent needs a usable unique index (55000, nothing changes).
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message,
       r->'error'->>'hint' AS hint
FROM matviews.alter('mv_al', refresh_strategy => 'concurrent') r;
SELECT * FROM alter_def('mv_al');
-- A bad strategy: 22023.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.alter('mv_al', refresh_strategy => 'sometimes') r;

-- unique_index_columns: creates the managed index.
SELECT jsonb_pretty(mvtest_stable(r)) FROM matviews.alter('mv_al', unique_index_columns => ARRAY['id']) r;
SELECT * FROM alter_indexes('mv_al');
-- Now concurrent is accepted, and refresh uses it.
SELECT r->>'status' AS status, r->'response'->'changes' AS changes
FROM matviews.alter('mv_al', refresh_strategy => 'concurrent') r;
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy FROM matviews.refresh('mv_al') r;
-- Replacing the columns replaces the managed index, leaving the user's own indexes alone.
CREATE INDEX alter_user_idx ON mv_al (v);
SELECT r->>'status' AS status, r->'response'->>'index' AS index, r->'response'->'sql' AS sql,
       r->'response'->'changes' AS changes
FROM matviews.alter('mv_al', unique_index_columns => ARRAY['grp', 'id']) r;
SELECT * FROM alter_indexes('mv_al');
-- The same columns again: nothing to do.
SELECT r->>'status' AS status, r->'response'->'sql' AS sql, r->'response'->'changes' AS changes
FROM matviews.alter('mv_al', unique_index_columns => ARRAY['grp', 'id']) r;
-- ... unless the managed index went missing: then it is created again.
DROP INDEX mv_al_grp_id_key;
SELECT r->>'status' AS status, r->'response'->'sql' AS sql, r->'response'->'changes' AS changes
FROM matviews.alter('mv_al', unique_index_columns => ARRAY['grp', 'id']) r;
SELECT * FROM alter_indexes('mv_al');
-- Removing them while the strategy is concurrent: 55000, the index stays.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.alter('mv_al', unique_index_columns => ARRAY[]::text[]) r;
SELECT * FROM alter_indexes('mv_al');
SELECT * FROM alter_def('mv_al');
-- Back to regular and no columns in one call: the managed index is dropped.
SELECT r->>'status' AS status, r->'response'->'sql' AS sql, r->'response'->'changes' AS changes
FROM matviews.alter('mv_al', refresh_strategy => 'regular', unique_index_columns => ARRAY[]::text[]) r;
SELECT * FROM alter_indexes('mv_al');
SELECT * FROM alter_def('mv_al');
-- A column that does not exist: PostgreSQL's error, nothing changes.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.alter('mv_al', unique_index_columns => ARRAY['nope']) r;
SELECT * FROM alter_def('mv_al');
-- A null column name: 22023.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.alter('mv_al', unique_index_columns => ARRAY['id', NULL]) r;
-- The managed index name is taken by another relation's index: refused, the other index is kept.
CREATE INDEX mv_al_v_key ON alter_src (v);
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.alter('mv_al', unique_index_columns => ARRAY['v']) r;
SELECT * FROM alter_indexes('mv_al');
SELECT * FROM alter_def('mv_al');
-- A definition whose columns name another table's index never drops that index.
SELECT r->>'status' AS status FROM matviews.create('mv_al2', 'SELECT id, v FROM alter_src') r;
CREATE INDEX mv_al2_id_key ON alter_src (id);
-- (As superuser the catalog can be written directly; users cannot, see security.sql.)
UPDATE matviews.definitions SET unique_index_columns = ARRAY['id'] WHERE view_name = 'mv_al2';
SELECT r->>'status' AS status, r->'response'->'sql' AS sql
FROM matviews.alter('mv_al2', unique_index_columns => ARRAY[]::text[]) r;
SELECT to_regclass('mv_al2_id_key') IS NOT NULL AS other_index_kept;
DROP INDEX mv_al2_id_key, mv_al_v_key;

-- Old and new column lists whose managed index names are equal (id, grp -> id_grp): the new
-- index replaces the old one under the same name.
SELECT r->>'status' AS status
FROM matviews.create('mv_al3', 'SELECT id, grp, id * 10 + grp AS id_grp FROM alter_src',
                     unique_index_columns => ARRAY['id', 'grp']) r;
SELECT * FROM alter_indexes('mv_al3');
SELECT r->>'status' AS status, r->'response'->'sql' AS sql
FROM matviews.alter('mv_al3', unique_index_columns => ARRAY['id_grp']) r;
SELECT * FROM alter_indexes('mv_al3');

-- options: lock_timeout, statement_timeout, max_retries, retry_delay; merged key by key.
SELECT r->>'status' AS status, r->'response'->'changes' AS changes
FROM matviews.alter('mv_al', options => '{"lock_timeout": "5s", "statement_timeout": 60000}') r;
SELECT r->>'status' AS status, r->'response'->'changes'->'options'->'after' AS options
FROM matviews.alter('mv_al', options => '{"max_retries": 3, "retry_delay": "30 seconds"}') r;
SELECT r->>'status' AS status, r->'response'->'changes'->'options'->'after' AS options
FROM matviews.alter('mv_al', options => '{"retry_delay": 10, "lock_timeout": "250ms"}') r;
-- null removes a key.
SELECT r->>'status' AS status, r->'response'->'changes'->'options'->'after' AS options
FROM matviews.alter('mv_al', options => '{"statement_timeout": null, "max_retries": null}') r;
SELECT options FROM alter_def('mv_al');
-- Unknown keys and bad values: 22023, nothing changes.
CREATE TABLE alter_bad_options (ord serial, options jsonb);
INSERT INTO alter_bad_options (options) VALUES
    ('{"lock_timout": "5s"}'), ('{"": 1}'),
    ('{"lock_timeout": "soon"}'), ('{"lock_timeout": -1}'), ('{"lock_timeout": "-5s"}'), ('{"lock_timeout": true}'),
    ('{"lock_timeout": 1.5}'), ('{"lock_timeout": "99999999999999ms"}'), ('{"statement_timeout": {"ms": 5}}'),
    ('{"max_retries": -1}'), ('{"max_retries": 1001}'), ('{"max_retries": "3"}'), ('{"max_retries": 2.5}'),
    ('{"retry_delay": 0}'), ('{"retry_delay": "-1 minute"}'), ('{"retry_delay": "0 seconds"}'),
    ('{"retry_delay": "later"}'), ('{"retry_delay": [1]}'),
    ('[]'), ('"5s"'), ('null'), ('{"statement_timeout": 2147483648}');
SELECT b.ord, b.options, r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate,
       r->'error'->>'message' AS message, r->'error'->>'detail' AS detail
FROM alter_bad_options b, matviews.alter('mv_al', options => b.options) r ORDER BY b.ord;
SELECT r->'error'->>'hint' AS hint FROM matviews.alter('mv_al', options => '{"lock_timout": "5s"}') r;
-- The largest accepted value is PostgreSQL's own limit.
SELECT r->>'status' AS status, r->'response'->'changes'->'options'->'after' AS options
FROM matviews.alter('mv_al', options => '{"statement_timeout": 2147483647}') r;
SELECT r->>'status' AS status FROM matviews.refresh('mv_al') r;
SELECT r->>'status' AS status FROM matviews.alter('mv_al', options => '{"statement_timeout": null}') r;
SELECT options FROM alter_def('mv_al');

-- enabled.
SELECT r->>'status' AS status, r->'response'->'changes' AS changes FROM matviews.alter('mv_al', enabled => false) r;
SELECT enabled FROM matviews.status WHERE view = 'public.mv_al';
SELECT r->>'status' AS status, r->'response'->'changes' AS changes FROM matviews.alter('mv_al', enabled => true) r;
-- Nothing given: nothing changes.
SELECT r->>'status' AS status, r->'response'->'changes' AS changes, r->'response'->'sql' AS sql
FROM matviews.alter('mv_al') r;
-- Every change is recorded as an alter run.
SELECT status, count(*) FROM matviews.runs WHERE view = 'public.mv_al' AND operation = 'alter' GROUP BY 1 ORDER BY 1;

-- An unmanaged view: 42704, with a hint to adopt it. A table: 42809. Missing: 42704.
CREATE MATERIALIZED VIEW mv_ad AS SELECT id, v FROM alter_src;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate,
       r->'error'->>'message' AS message, r->'error'->>'hint' AS hint
FROM matviews.alter('mv_ad', enabled => false) r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'detail' AS detail
FROM matviews.alter('alter_src', enabled => false) r;
SELECT r->>'status' AS status, r->>'view' AS view, r->'error'->>'sqlstate' AS sqlstate,
       r->'error'->>'hint' AS hint
FROM matviews.alter('mv_missing', enabled => false) r;

-- adopt: registers the view as it is, without rebuilding it.
CREATE TEMP TABLE alter_before AS
SELECT oid, relfilenode FROM pg_class WHERE oid = 'mv_ad'::regclass;
SELECT jsonb_pretty(mvtest_stable(r) #- '{response,definition_id}') FROM matviews.adopt('mv_ad') r;
SELECT c.oid = b.oid AS same_oid, c.relfilenode = b.relfilenode AS same_relfilenode
FROM pg_class c, alter_before b WHERE c.oid = 'mv_ad'::regclass;
SELECT schema_name, view_name, sql, search_path, refresh_strategy, owner = current_user AS owner_is_me
FROM matviews.definitions WHERE view_name = 'mv_ad';
-- The stored query is schema-qualified: it means the same under any search_path.
SET search_path = '';
DO $$
DECLARE n bigint;
BEGIN
    EXECUTE 'SELECT count(*) FROM (' || (SELECT sql FROM matviews.definitions WHERE view_name = 'mv_ad') || ') q' INTO n;
    RAISE NOTICE 'the stored query runs with an empty search_path: % rows', n;
END $$;
RESET search_path;
-- Twice: skipped.
SELECT r->>'status' AS status, r->'response'->>'reason' AS reason FROM matviews.adopt('mv_ad') r;
-- Adopted views can be altered and refreshed like created ones.
SELECT r->>'status' AS status FROM matviews.alter('mv_ad', enabled => false) r;
SELECT r->>'status' AS status FROM matviews.refresh('mv_ad') r;
-- Missing: 42P01. A table or a view: 42809.
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'message' AS message
FROM matviews.adopt('mv_missing') r;
CREATE VIEW alter_plain_view AS SELECT 1 AS x;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.adopt('alter_src') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate FROM matviews.adopt('alter_plain_view') r;
-- adopt with concurrent: needs a usable index (55000), or unique_index_columns to create one.
CREATE MATERIALIZED VIEW mv_ad2 AS SELECT id, grp FROM alter_src;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate, r->'error'->>'hint' AS hint
FROM matviews.adopt('mv_ad2', refresh_strategy => 'concurrent') r;
SELECT count(*) AS not_adopted FROM matviews.definitions WHERE view_name = 'mv_ad2';
SELECT * FROM alter_indexes('mv_ad2');
SELECT r->>'status' AS status, r->'response'->>'index' AS index, r->'response'->'sql' AS sql
FROM matviews.adopt('mv_ad2', refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id'],
                    options => '{"lock_timeout": "1s"}') r;
SELECT * FROM alter_def('mv_ad2');
SELECT * FROM alter_indexes('mv_ad2');
SELECT r->>'status' AS status, r->'response'->>'strategy' AS strategy FROM matviews.refresh('mv_ad2') r;
-- A view that already has a usable unique index of its own can be adopted as concurrent.
CREATE MATERIALIZED VIEW mv_ad3 AS SELECT id FROM alter_src;
CREATE UNIQUE INDEX mv_ad3_own ON mv_ad3 (id);
SELECT r->>'status' AS status, r->'response'->'sql' AS sql
FROM matviews.adopt('mv_ad3', refresh_strategy => 'concurrent') r;
-- Bad options or strategy: 22023, not adopted.
CREATE MATERIALIZED VIEW mv_ad4 AS SELECT 1 AS x;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.adopt('mv_ad4', options => '{"nope": 1}') r;
SELECT r->>'status' AS status, r->'error'->>'sqlstate' AS sqlstate
FROM matviews.adopt('mv_ad4', refresh_strategy => 'fast') r;
SELECT count(*) AS not_adopted FROM matviews.definitions WHERE view_name = 'mv_ad4';
-- An unpopulated view can be adopted too.
CREATE MATERIALIZED VIEW mv_ad5 AS SELECT id FROM alter_src WITH NO DATA;
SELECT r->>'status' AS status FROM matviews.adopt('mv_ad5') r;
SELECT view, exists, populated FROM matviews.status WHERE view = 'public.mv_ad5';

-- Clean up.
SELECT r->>'status' AS status, count(*)
FROM (VALUES ('mv_al'), ('mv_al2'), ('mv_al3'), ('mv_ad'), ('mv_ad2'), ('mv_ad3'), ('mv_ad4'), ('mv_ad5')) v(n),
     matviews.delete(v.n) r
GROUP BY 1;
DROP VIEW alter_plain_view;
DROP TABLE alter_src, alter_bad_options;
DROP FUNCTION alter_indexes(text), alter_def(text);
