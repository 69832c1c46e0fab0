-- matviews 0.2 -> 0.3: refresh on change (matviews.watch / unwatch). A watched view's base tables
-- carry a statement trigger that notes the change in the writer's backend; at commit it is
-- counted in shared memory and the scheduler marks the view stale and queues its refresh.
\echo Use "ALTER EXTENSION matviews UPDATE TO '0.3'" to load this file. \quit

-- What a watch follows, and where its view stands. watch_min_interval (0.1) says the view is
-- watched. watch_relids: every relation the view reads, through plain views, partitions and
-- inheritance children, and the managed views it reads (regclass[], so pg_dump writes names and
-- a restore binds the new OIDs). change_seq counts the scheduler's marks; a refresh that read
-- n before it ran clears the view only if no mark came after (the refresh might not include
-- those changes). pending_changes counts statements, not rows.
ALTER TABLE matviews.definitions ADD COLUMN watch_relids pg_catalog.regclass[];
ALTER TABLE matviews.definitions ADD COLUMN stale_since timestamptz;
ALTER TABLE matviews.definitions ADD COLUMN pending_changes bigint NOT NULL DEFAULT 0;
ALTER TABLE matviews.definitions ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;

-- The statement trigger a watch puts on each base table (AFTER INSERT OR UPDATE OR DELETE OR
-- TRUNCATE, FOR EACH STATEMENT, named matviews_watch). It only notes the table in the writer's
-- backend: no privilege on matviews.* is needed to fire it, and calling it as anything but a
-- trigger is an error.
CREATE FUNCTION matviews._on_change() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'matviews_on_change';

CREATE FUNCTION matviews.watch(name text, min_interval text DEFAULT '1 second')
RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'matviews_watch';

CREATE FUNCTION matviews.unwatch(name text)
RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'matviews_unwatch';

-- New partitions and inheritance children of a watched table get the trigger too, and a
-- replaced plain view under a watched view is followed: the ddl_command_end trigger also fires
-- for CREATE TABLE (PARTITION OF, INHERITS) and CREATE VIEW (OR REPLACE).
DROP EVENT TRIGGER matviews_ddl_end;
CREATE EVENT TRIGGER matviews_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER MATERIALIZED VIEW', 'ALTER TABLE', 'ALTER INDEX', 'ALTER SCHEMA',
                 'CREATE TABLE', 'CREATE VIEW', 'ALTER VIEW')
    EXECUTE FUNCTION matviews._on_ddl_end();

-- The status view gains the watch's columns (at the end, so existing readers keep theirs).
CREATE OR REPLACE VIEW matviews.status WITH (security_invoker = true) AS
SELECT CASE WHEN c.oid IS NOT NULL THEN pg_catalog.format('%I.%I', n.nspname, c.relname)
            ELSE pg_catalog.format('%I.%I', d.schema_name, d.view_name) END AS view,
       c.oid IS NOT NULL AS exists,
       c.relispopulated AS populated,
       d.refresh_strategy AS strategy,
       d.schedule,
       d.watch_min_interval IS NOT NULL AS watched,
       d.stale,
       ok.finished_at AS last_refresh_at,
       last.duration_ms AS last_duration_ms,
       last.status AS last_status,
       d.consecutive_failures,
       d.next_run_at,
       CASE WHEN c.reltuples OPERATOR(pg_catalog.>=) 0 THEN c.reltuples::bigint END AS row_estimate,
       CASE WHEN c.oid IS NOT NULL THEN pg_catalog.pg_total_relation_size(c.oid) END AS total_bytes,
       COALESCE(pg_catalog.pg_get_userbyid(c.relowner), d.owner) AS owner,
       d.enabled,
       d.source,
       d.id AS definition_id,
       d.watch_min_interval AS watch_min_interval,
       d.stale_since,
       d.pending_changes
FROM matviews.definitions d
LEFT JOIN pg_catalog.pg_class c
       ON c.oid OPERATOR(pg_catalog.=) d.relid
      AND c.relkind OPERATOR(pg_catalog.=) 'm'
LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
LEFT JOIN LATERAL (
    SELECT r.status, r.duration_ms, r.finished_at
    FROM matviews.runs r
    WHERE r.definition_id OPERATOR(pg_catalog.=) d.id
      AND r.operation OPERATOR(pg_catalog.=) ANY ('{create,refresh,swap}'::text[])
      AND r.status OPERATOR(pg_catalog.=) ANY ('{success,failed}'::text[])
    ORDER BY r.id DESC LIMIT 1) last ON true
LEFT JOIN LATERAL (
    SELECT r.finished_at
    FROM matviews.runs r
    WHERE r.definition_id OPERATOR(pg_catalog.=) d.id
      AND r.operation OPERATOR(pg_catalog.=) ANY ('{create,refresh,swap}'::text[])
      AND r.status OPERATOR(pg_catalog.=) 'success'
    ORDER BY r.id DESC LIMIT 1) ok ON true;
