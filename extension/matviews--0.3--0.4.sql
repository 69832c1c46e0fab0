-- matviews 0.3 -> 0.4: incremental refresh (refresh_strategy 'incremental') and
-- matviews.explain. Statement triggers with transition tables on every base table an
-- incremental view reads log each statement's rows in matviews.changes; a refresh recomputes only
-- the view rows whose key those rows affect and applies the difference to the view.
\echo Use "ALTER EXTENSION matviews UPDATE TO '0.4'" to load this file. \quit

ALTER TABLE matviews.definitions DROP CONSTRAINT definitions_refresh_strategy_check;
ALTER TABLE matviews.definitions ADD CONSTRAINT definitions_refresh_strategy_check
    CHECK (refresh_strategy IN ('regular', 'concurrent', 'swap', 'incremental'));

-- Where an incremental view stands: inc_snapshot, the snapshot its rows were computed in (every
-- change committed before it is in the view; the rows of the others are pending); inc_state, what
-- the capture looked like then (the database, the view, and each captured table with its columns:
-- any difference means the log cannot be trusted and the next refresh is a full one);
-- inc_relids, the tables whose log rows it reads. Not dumped with the definitions' data in any
-- way a restore could trust: a restored view has another OID, so its first refresh is full.
ALTER TABLE matviews.definitions ADD COLUMN inc_snapshot pg_catalog.pg_snapshot;
ALTER TABLE matviews.definitions ADD COLUMN inc_state jsonb;
ALTER TABLE matviews.definitions ADD COLUMN inc_relids pg_catalog.oid[];

-- The change log: one row per statement and captured table, with the statement's old and new
-- rows as jsonb arrays (kind 'i', 'u', 'd'), or a TRUNCATE marker (kind 't'). Append-only, no
-- unique index: writers never wait for each other. xid is the writer's top-level transaction, so
-- a refresh takes exactly the rows committed before its snapshot. Logged (WAL): a crash loses no
-- captured change. Only the extension's owner reads or writes it; the capture trigger writes it
-- as that owner, so a writer needs no privilege on matviews.*.
CREATE TABLE matviews.changes (
    relid    pg_catalog.oid NOT NULL,
    xid      pg_catalog.xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    kind     "char" NOT NULL,
    old_rows jsonb,
    new_rows jsonb
);
CREATE INDEX changes_relid ON matviews.changes (relid);
COMMENT ON TABLE matviews.changes IS 'Rows changed in the base tables of incremental views, not yet taken in by all of them';

-- The capture trigger (AFTER INSERT, UPDATE, DELETE with transition tables, and TRUNCATE; FOR
-- EACH STATEMENT; named matviews_capture_ins, _upd, _del, _trunc). It converts the transition
-- rows as the writer, then appends them as the extension's owner. Calling it as anything but a
-- trigger is an error.
CREATE FUNCTION matviews._capture() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'matviews_capture';

CREATE FUNCTION matviews.explain(name text DEFAULT NULL, sql text DEFAULT NULL)
RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'matviews_explain';
