-- matviews 0.1 -> 0.2: definitions and queued runs are bound to their relation's OID, never to a
-- name; a plain DROP, RENAME, SET SCHEMA or OWNER TO of a managed view is followed through event
-- triggers; row-level security follows the relation's real owner.
\echo Use "ALTER EXTENSION matviews UPDATE TO '0.2'" to load this file. \quit

-- The schema must belong to the extension's owner or a superuser: a schema named matviews that a
-- database owner created beforehand would let that owner add objects to it, or drop it and the
-- extension with every definition and run.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_namespace n, pg_catalog.pg_extension e
        WHERE n.nspname OPERATOR(pg_catalog.=) 'matviews'
          AND e.extname OPERATOR(pg_catalog.=) 'matviews'
          AND (n.nspowner OPERATOR(pg_catalog.=) e.extowner
               OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r
                   WHERE r.oid OPERATOR(pg_catalog.=) n.nspowner))) THEN
        RAISE EXCEPTION 'schema matviews is owned by role %, not by the extension''s owner',
            (SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace
             WHERE nspname OPERATOR(pg_catalog.=) 'matviews')
            USING ERRCODE = '42501',
                  HINT = 'Drop that schema, or give it to a superuser (ALTER SCHEMA matviews OWNER TO ...), then install matviews again.';
    END IF;
END
$$;

-- The relation a definition manages. regclass, so that pg_dump writes it as the view's name and a
-- restore binds it to the restored view's new OID (pg_upgrade keeps relation OIDs). NULL: the
-- definition is detached (kept by delete(keep_definition => true)); nothing binds it again by
-- name except create(force) or adopt by its owner.
ALTER TABLE matviews.definitions ADD COLUMN relid pg_catalog.regclass;
ALTER TABLE matviews.definitions DROP CONSTRAINT definitions_schema_name_view_name_key;
CREATE UNIQUE INDEX definitions_relid_key ON matviews.definitions (relid);
-- At most one detached definition per name, so a kept definition is found unambiguously.
CREATE UNIQUE INDEX definitions_detached_name_key ON matviews.definitions (schema_name, view_name)
    WHERE relid IS NULL;

-- Existing definitions bind to the materialized view of their name only when that view is owned
-- by the definition's owner; any other is left detached rather than bound to a stranger's view.
UPDATE matviews.definitions d
   SET relid = c.oid
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE n.nspname OPERATOR(pg_catalog.=) d.schema_name
   AND c.relname OPERATOR(pg_catalog.=) d.view_name
   AND c.relkind OPERATOR(pg_catalog.=) 'm'
   AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) d.owner;

-- The relation a queued or running run acts on; cleared once the run has ended (history keeps the
-- view's name), so a dumped history never carries an OID.
ALTER TABLE matviews.runs ADD COLUMN relid pg_catalog.regclass;
UPDATE matviews.runs r
   SET relid = c.oid
  FROM pg_catalog.pg_class c
 WHERE r.status OPERATOR(pg_catalog.=) 'queued'
   AND c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(r.view)
   AND c.relkind OPERATOR(pg_catalog.=) 'm'
   AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) r.owner;
UPDATE matviews.runs
   SET status = 'cancelled', finished_at = pg_catalog.now(),
       error = pg_catalog.jsonb_build_object(
           'message', 'the queued run could not be bound to its view when matviews was updated',
           'sqlstate', '42P01', 'detail', NULL,
           'hint', 'Enqueue it again with matviews.enqueue().')
 WHERE status OPERATOR(pg_catalog.=) 'queued' AND relid IS NULL;

-- At most one queued, unstarted request per view, operation and strategy: enqueue coalesces
-- into it, so the queue is bounded by the number of views. Older duplicates are cancelled,
-- keeping the first.
UPDATE matviews.runs r
   SET status = 'cancelled', finished_at = pg_catalog.now(), relid = NULL,
       error = pg_catalog.jsonb_build_object(
           'message', 'the queued run was coalesced into an earlier one when matviews was updated',
           'sqlstate', '57014', 'detail', NULL, 'hint', NULL)
 WHERE r.status OPERATOR(pg_catalog.=) 'queued' AND r.trigger OPERATOR(pg_catalog.=) 'queue'
   AND EXISTS (SELECT 1 FROM matviews.runs o
               WHERE o.status OPERATOR(pg_catalog.=) 'queued'
                 AND o.trigger OPERATOR(pg_catalog.=) 'queue'
                 AND o.relid OPERATOR(pg_catalog.=) r.relid
                 AND o.operation OPERATOR(pg_catalog.=) r.operation
                 AND COALESCE(o.strategy, '') OPERATOR(pg_catalog.=) COALESCE(r.strategy, '')
                 AND o.id OPERATOR(pg_catalog.<) r.id);
CREATE UNIQUE INDEX runs_one_queued_request ON matviews.runs (relid, operation, (COALESCE(strategy, '')))
    WHERE status OPERATOR(pg_catalog.=) 'queued' AND trigger OPERATOR(pg_catalog.=) 'queue';
-- The scheduler finds the queued runs without reading the history.
CREATE INDEX runs_queued ON matviews.runs (id) WHERE status OPERATOR(pg_catalog.=) 'queued';

-- Cancels a queued run, or stops a running one (docs/api.md).
CREATE FUNCTION matviews.cancel(run_id bigint)
RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'matviews_cancel';

-- Row-level security by the relation's real owner while the definition is bound, so that a view
-- that changed hands is visible to its new owner at once; by the recorded owner when detached.
CREATE FUNCTION matviews.may_see(relid pg_catalog.regclass, owner name) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT COALESCE(
        (SELECT pg_catalog.pg_has_role(CURRENT_USER, c.relowner, 'MEMBER')
           FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relid),
        matviews.is_member_of(owner))
$$;
DROP POLICY definitions_visible ON matviews.definitions;
CREATE POLICY definitions_visible ON matviews.definitions FOR SELECT
    USING (matviews.may_see(relid, owner));

-- The status view joins the relation by OID.
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
       d.id AS definition_id
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

-- A plain DROP of a managed view removes its definition (schedule, watch) and cancels its queued
-- runs; RENAME, SET SCHEMA and OWNER TO (also through ALTER TABLE and ALTER SCHEMA ... RENAME)
-- refresh the names and owner a definition records (REASSIGN OWNED fires no event trigger: rights
-- and row-level security read the relation's real owner, so only the recorded name lags until the
-- next operation). Both run after PostgreSQL's own checks passed, and write matviews' tables as
-- the extension owner.
CREATE FUNCTION matviews._on_sql_drop() RETURNS event_trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'matviews_on_sql_drop';
CREATE FUNCTION matviews._on_ddl_end() RETURNS event_trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'matviews_on_ddl_end';
CREATE EVENT TRIGGER matviews_sql_drop ON sql_drop
    EXECUTE FUNCTION matviews._on_sql_drop();
CREATE EVENT TRIGGER matviews_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER MATERIALIZED VIEW', 'ALTER TABLE', 'ALTER INDEX', 'ALTER SCHEMA')
    EXECUTE FUNCTION matviews._on_ddl_end();

-- Rows that arrive without a relation: a dump of an older version restored into this one (its
-- COPY has no relid column; pg_dump restores extension tables after the views they name). They
-- bind as the update above does: to the materialized view of that name, only when it is owned
-- by the role the row names. matviews' own inserts always carry relid, and no other role may
-- insert, so nothing else ever binds by name.
CREATE FUNCTION matviews._bind_restored() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.relid IS NULL THEN
        IF TG_TABLE_NAME OPERATOR(pg_catalog.=) 'definitions' THEN
            NEW.relid := (SELECT c.oid FROM pg_catalog.pg_class c
                          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                          WHERE n.nspname OPERATOR(pg_catalog.=) NEW.schema_name
                            AND c.relname OPERATOR(pg_catalog.=) NEW.view_name
                            AND c.relkind OPERATOR(pg_catalog.=) 'm'
                            AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) NEW.owner);
        ELSIF NEW.status OPERATOR(pg_catalog.=) 'queued' THEN
            NEW.relid := (SELECT c.oid FROM pg_catalog.pg_class c
                          WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(NEW.view)
                            AND c.relkind OPERATOR(pg_catalog.=) 'm'
                            AND pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.=) NEW.owner);
            -- An older dump may hold several requests of one kind: the first one stays queued.
            IF NEW.trigger OPERATOR(pg_catalog.=) 'queue' AND EXISTS (
                SELECT 1 FROM matviews.runs o
                WHERE o.status OPERATOR(pg_catalog.=) 'queued'
                  AND o.trigger OPERATOR(pg_catalog.=) 'queue'
                  AND o.relid OPERATOR(pg_catalog.=) NEW.relid
                  AND o.operation OPERATOR(pg_catalog.=) NEW.operation
                  AND COALESCE(o.strategy, '') OPERATOR(pg_catalog.=) COALESCE(NEW.strategy, '')) THEN
                NEW.status := 'cancelled';
                NEW.relid := NULL;
            END IF;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER bind_restored BEFORE INSERT ON matviews.definitions
    FOR EACH ROW WHEN (NEW.relid IS NULL) EXECUTE FUNCTION matviews._bind_restored();
CREATE TRIGGER bind_restored BEFORE INSERT ON matviews.runs
    FOR EACH ROW WHEN (NEW.relid IS NULL AND NEW.status OPERATOR(pg_catalog.=) 'queued') EXECUTE FUNCTION matviews._bind_restored();
