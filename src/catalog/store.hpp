// The catalog gateway: the only code that reads or writes matviews' own tables (definitions and
// runs), in every process (SQL functions, event triggers, launcher, scheduler, jobs), and the only
// way the operations run statements at all. Reads and writes of matviews.* run as the extension's
// owner, so row-level security (which limits what users see) does not hide rows from the
// operations and users cannot write the tables directly; every statement runs with search_path
// pinned (pg::Spi). Callers check the user's rights on the view first.
//
// Identity is the relation's OID: a definition and a queued run name their relation by relid
// (regclass, so pg_dump writes a name and a restore binds the new OID), never by its name. The
// names a definition records are kept for display and for a detached definition (kept by
// delete(keep_definition)), which only create(force) or adopt by its owner binds again.
#pragma once

#include "boundary/spi.hpp"
#include "core/names.hpp"

namespace mv::catalog {

struct Definition {
    int64_t id = 0;
    Oid relid = InvalidOid;  // InvalidOid: detached
    std::string schema;
    std::string name;
    std::string sql;
    std::string search_path;
    std::string refresh_strategy = "regular";
    std::optional<std::vector<std::string>> unique_index_columns;
    Json options = Json::object();
    bool enabled = true;
    std::string owner;
    std::optional<std::string> schedule;
    std::optional<std::string> source;
    std::optional<std::string> watch_min_interval;  // set: the view is watched
    int consecutive_failures = 0;
    // Where the watch stands: stale since the first unrefreshed commit, the statements counted
    // since the last refresh, and the number of marks the scheduler applied (change_seq).
    bool stale = false;
    int64_t pending_changes = 0;
    int64_t change_seq = 0;
};

// What an operation read of its definition's watch under the view's lock: a refresh that
// succeeds clears the marks it saw, and only those (Store::record_outcome).
struct WatchSeen {
    int64_t change_seq = 0;
    int64_t pending_changes = 0;
    int64_t at = 0;  // TimestampTz of the read: a later mark may be for a later commit
};

// A relation a watched view reads (Store::watch_sources).
struct WatchSource {
    Oid relid = InvalidOid;
    char relkind = 0;    // r, p: gets the trigger; v: followed; m: an upstream managed view
    std::string quoted;  // schema.name
};

// Changes to one relation the scheduler drained from shared memory, or leftovers for one
// definition whose row was locked when they were applied.
struct WatchMark {
    Oid relid = InvalidOid;     // by relation (from shared memory)
    int64_t definition_id = 0;  // or by definition (a leftover)
    int64_t count = 0;
    int64_t first_at = 0;  // TimestampTz
};

// A run as the runner finishes it.
struct RunOutcome {
    int64_t id = 0;
    std::string view;
    std::optional<int64_t> definition_id;
    std::optional<std::string> strategy;
    std::string status;  // success, failed, skipped
    double duration_ms = 0;
    std::optional<int64_t> row_count_before;
    std::optional<int64_t> row_count_after;
    std::optional<Json> error;
    Json meta = Json::object();
    std::string owner;
    std::string operation;  // for insert_run: what finish_run leaves as it was queued
    std::string trigger;
    int64_t started_at = 0;  // TimestampTz
    // What the run says about its definition's health, recorded in the same statement as the
    // run (Store::record_outcome); none when it says nothing.
    struct Health {
        int64_t definition_id = 0;
        bool success = false;
        std::optional<WatchSeen> seen;
    };
    std::optional<Health> health;
};

// A run the scheduler knows about, as it loads it.
struct QueuedRunRow {
    int64_t id = 0;
    std::string view;
    std::optional<int64_t> definition_id;
    Oid relid = InvalidOid;
    int64_t due = 0;  // TimePoint (Unix-epoch microseconds)
};

// A scheduled definition, as the scheduler loads it.
struct ScheduledRow {
    int64_t id = 0;
    std::string view;
    std::string schedule;
    bool enabled = true;
    Json options = Json::object();
    int consecutive_failures = 0;
    std::optional<int64_t> last_started;   // TimePoint
    std::optional<int64_t> last_finished;  // TimePoint
};

// Who a job runs as.
struct JobIdentity {
    Oid owner = InvalidOid;
    bool can_connect = false;  // LOGIN, CONNECT on the database and no connection limit
    std::string owner_name;
};

// The version of matviews' SQL objects this library reads and writes (matviews.control's
// default_version; a lint checks they agree).
inline constexpr const char* kSchemaVersion = "0.4";

class Store {
  public:
    explicit Store(pg::Spi& spi) : spi_(spi) {}

    // Whether the database's matviews objects are at kSchemaVersion: until ALTER EXTENSION
    // UPDATE, the worker and the event triggers leave an older version alone.
    bool schema_current();

    // ---- definitions
    // The definition bound to a relation.
    std::optional<Definition> find_by_relid(Oid relid);
    std::optional<Definition> find_by_id(int64_t id);
    // A detached definition (no relation) recorded under schema.name.
    std::optional<Definition> find_detached(const std::string& schema, const std::string& name);
    // A detached definition of a parsed name: its schema's, or the first of search_path's.
    std::optional<Definition> find_detached(const QualifiedName& q);
    int64_t insert(const Definition& d);
    // Writes every setting of d (by id) and bumps updated_at; never the relation it is bound to.
    void update(const Definition& d);
    void remove(int64_t id);
    // Unbinds the definition from its relation (delete with keep_definition).
    void detach(int64_t id);
    // Moves definitions and unfinished runs from one relation to another (a swap replaced it).
    void rebind(Oid from, Oid to);
    // A plain DROP removed these relations: their definitions go, their queued runs are
    // cancelled. Returns how many definitions were removed.
    int64_t relations_dropped(const std::vector<Oid>& relids);
    // What a command at ddl_command_end touched (pg_event_trigger_ddl_commands), as oid[] text:
    // the relations, the schemas, and the relations with their inheritance parents.
    struct DdlCommands {
        std::string relations = "{}";
        std::string schemas = "{}";
        std::string related = "{}";
    };
    DdlCommands ddl_commands();
    // Records the current names and owner of every bound definition whose relation was renamed,
    // moved or given away (the ddl_command_end event trigger).
    void sync_relation_names(const DdlCommands& commands);
    // The sql_drop event trigger: the relations the command dropped, less those a swap in this
    // backend is replacing, go through relations_dropped. Nothing while matviews itself is
    // being dropped.
    void on_sql_drop();
    // Counts consecutive failures of refresh-like runs. A success also clears the watch marks
    // the refresh saw under its lock (seen); marks applied after them keep the view stale.
    void record_outcome(int64_t id, bool success, const std::optional<WatchSeen>& seen);

    // ---- watches (watch.cpp)
    // Every relation the view's query reads, through plain views, partitions and inheritance
    // children; managed views it reads are sources too, but not followed (their refresh is the
    // change). 0A000 for a foreign table or a system catalog, whose changes fire no trigger.
    std::vector<WatchSource> watch_sources(Oid view);
    // Puts the statement trigger matviews_watch on every table among sources that lacks it, as
    // the view's owner (`owner`), so PostgreSQL checks the owner's TRIGGER privilege (42501),
    // each table locked by OID first (waiting, or with wait false 55P03 when it is busy). A
    // trigger of that name that is not matviews' own is an error (42710). Returns how many it
    // created.
    int install_watch_triggers(const std::vector<WatchSource>& sources, Oid owner,
                               const std::string& owner_name, bool wait);
    // The same for an incremental view's capture triggers (matviews_capture_ins, _upd, _del,
    // _trunc) on each table a change of its sources can be written to; waits for the locks.
    int install_capture_triggers(const std::vector<Oid>& tables, Oid owner,
                                 const std::string& owner_name);
    // Sets or clears (min_interval nullopt) the watch of a definition and the relations it
    // follows; a new watch starts stale, so the view is refreshed once; a watch run queued for
    // the old watch is cancelled.
    void set_watch(int64_t id, const std::optional<std::string>& min_interval,
                   const std::vector<Oid>& relids);
    // The scheduler: drops matviews_watch triggers no watch needs any more, each only if its
    // table can be locked at once (DROP TRIGGER takes ACCESS EXCLUSIVE); returns how many are
    // left for later.
    int drop_unused_watch_triggers();
    // The ddl_command_end event trigger: when a watch reads a relation this command created or
    // altered (a new partition or child of a watched table, a replaced plain view), wakes the
    // scheduler at commit, which follows the watch's sources again (refollow_watch).
    void follow_watched_ddl(const DdlCommands& commands);
    // The scheduler: the watched, bound definitions, and following one's sources again as its
    // owner (false: the definition or a table was busy; try later).
    std::vector<int64_t> watched_definitions();
    bool refollow_watch(int64_t id);
    // The scheduler: applies marks (and, with all_watched, one to every watched view: the
    // start of a scheduler, or more changes than shared memory could count). A definition
    // whose row is locked (its refresh is committing) is skipped; its marks come back to be
    // applied later.
    std::vector<WatchMark> apply_watch_marks(const std::vector<WatchMark>& marks, bool all_watched);
    // Queues a watch run for each stale, watched, enabled view without one, due when its last
    // watch run started plus min_interval (now at the earliest); returns how many.
    int64_t enqueue_watch_runs();
    // Whether any definition is watched (the scheduler skips its watch step otherwise).
    bool any_watched();

    // ---- runs
    // Inserts a run that has ended (a call the caller made itself, never queued), in one
    // statement, recorded for the caller and owned by r.owner (the caller when empty); returns
    // its id. Nobody outside the caller's transaction could ever see it running, so it is
    // written once, when its outcome is known.
    int64_t insert_run(const RunOutcome& r);
    // Inserts a queued run for the background worker; returns its id. run_at is a TimestampTz.
    // A request coalesces into the view's queued, unstarted run of the same operation and
    // strategy (whose run_at becomes the earlier of the two): the queue holds at most one such
    // run per view (a partial unique index), so it is bounded by the number of views.
    struct Enqueued {
        int64_t run_id = 0;
        bool coalesced = false;
    };
    Enqueued enqueue_run(const std::string& view, Oid relid, std::optional<int64_t> definition_id,
                         const std::string& operation, const std::optional<std::string>& strategy,
                         int64_t run_at, const std::string& owner, const Json& request);
    // What a job needs of its queued run.
    struct QueuedRun {
        std::string view;
        Oid relid = InvalidOid;
        std::string owner;
        std::string operation;
        std::optional<std::string> strategy;
        std::string trigger;
    };
    // Locks a queued run and marks it running in this backend (a job worker claims its run);
    // nullopt when it is no longer queued.
    std::optional<QueuedRun> claim_queued_run(int64_t id);
    void finish_run(const RunOutcome& r);
    // Sets meta.response.<key> of a finished run (e.g. the cascade a refresh started).
    void annotate_run(int64_t id, const std::string& key, const Json& value);
    // A run as matviews.wait reports it (visible to the caller only under row-level security);
    // nullopt when there is none.
    struct RunState {
        std::string status, view, operation, trigger;
        std::optional<std::string> strategy;
        Json response = Json::object();
        std::optional<Json> error;
    };
    std::optional<RunState> run_state(int64_t id);
    // Only the run's status, as the caller: what a polling loop reads until the run has ended.
    std::optional<std::string> run_status(int64_t id);
    // The relation a queued or running run is bound to now (a swap moves it), or InvalidOid.
    Oid run_relid(int64_t id);

    // ---- cancel
    // What matviews.cancel needs of a run the caller can see (row-level security applies).
    struct RunControl {
        std::string status, view, owner;
        std::optional<int64_t> pid;  // the job's process, while running
    };
    std::optional<RunControl> run_control(int64_t id);
    // queued -> cancelled, with who cancelled it; false when the run is no longer queued (a job
    // claimed it meanwhile: a claim waits for this transaction and then finds it cancelled).
    bool cancel_queued_run(int64_t id);
    // Whether pid is the matviews job process running run id now.
    bool is_job_of_run(int pid, int64_t id);
    // running -> cancelled (or failed, for a timeout), by the job itself once its work has been
    // rolled back: the query cancel that matviews.cancel sends, or pg_cancel_backend.
    void end_interrupted_run(int64_t id, bool cancelled, const Json& error);

    // ---- statements the operations run (DDL on the view, as the caller)
    void execute(const std::string& sql);
    // A statement that runs a view owner's code (its query) under search_path (nullopt: the
    // session's own).
    void execute_owner_code(const std::string& sql, const std::optional<std::string>& search_path);

    // ---- the scheduler and its jobs (store_worker.cpp)
    bool extension_installed();
    // The strategy a queued run will use: its own, else its definition's, else regular.
    std::string effective_strategy(int64_t run_id, const std::optional<std::string>& requested);
    // Inserts the queued run of a schedule tick (due: a TimePoint) for a definition; nullopt when
    // it is gone.
    std::optional<int64_t> insert_scheduled_run(int64_t definition_id, int64_t due,
                                                const std::string& kind, int attempt);
    // Who the run's job runs as: the owner of the relation the run is bound to, which must still
    // be the owner the run was queued for; nullopt (and the run failed) when it is gone.
    std::optional<JobIdentity> job_identity(int64_t run_id, bool scheduled);
    void delete_run(int64_t run_id);
    // Marks a run failed now and counts it in its definition's consecutive_failures.
    void fail_run(int64_t run_id, const Json& error);
    // Runs left running by processes that are gone; `since` is when this server began serving.
    struct Interrupted {
        int64_t id;
        bool restarted;
    };
    std::vector<Interrupted> interrupted_runs(int64_t since);
    // A finished job's run: its status and finish time (TimePoint).
    std::optional<std::pair<std::string, int64_t>> run_outcome(int64_t run_id);
    void prune_runs(double retention_s);
    void write_next_run_times(const std::vector<std::pair<int64_t, std::optional<int64_t>>>& next);
    // An interval in microseconds.
    int64_t interval_us(const std::string& interval);
    // Skips the WAL flush at commit of the current transaction (display-only writes).
    void relax_commit();
    // The scheduler's reads with the role each job runs as (an OID: the relation's owner, else
    // the run's recorded owner); a row that cannot be read comes back with `error` set instead of
    // failing the whole read, so one bad row never holds back the others.
    struct ScheduledEntry {
        ScheduledRow row;
        Oid owner = InvalidOid;
        std::optional<std::string> error;
    };
    std::vector<ScheduledEntry> scheduler_definitions();
    struct QueuedEntry {
        QueuedRunRow row;
        Oid owner = InvalidOid;
        std::optional<std::string> error;
    };
    std::vector<QueuedEntry> scheduler_queued_runs();
    // A number that changes when matviews' tables are written by anyone (the cumulative
    // statistics' row counts), so an idle scheduler notices changes made without matviews'
    // functions (ALTER EXTENSION UPDATE, direct writes) with one cheap statement.
    int64_t tables_change_marker();

    // For catalog-layer readers that take the session (relation.cpp, clone.cpp).
    pg::Spi& spi() { return spi_; }

    // ---- incremental refresh (changes.cpp)
    // The capture trigger: converts the statement's transition rows to jsonb as the writer (a
    // type's cast to json is its owner's code, never run with more rights than the writer's),
    // then appends them to matviews.changes as the extension's owner.
    void capture_statement(void* trigger_data);
    // 42501 unless owner has TRIGGER on every table (the capture triggers are its own).
    void require_trigger_privilege(const std::vector<Oid>& tables, Oid owner,
                                   const std::string& owner_name);
    // The view's tables that lack one of the capture triggers; 55000 for a trigger of that name
    // that would not capture (disabled, or not matviews' own definition).
    std::vector<Oid> tables_missing_capture(const std::vector<Oid>& tables, Oid owner);
    // What the capture looks like now: this cluster and database, the view, and every captured
    // table with its columns (jsonb text). Any difference from the recorded one means the log
    // cannot be trusted.
    std::string capture_shape(Oid view, const std::vector<Oid>& tables, uint64_t query,
                              const std::vector<Oid>& functions);
    // inc_snapshot and inc_state (text) of a definition, under the view's lock.
    std::pair<std::optional<std::string>, std::optional<std::string>> incremental_state(int64_t id);
    // Changes to `tables` committed after `since` and visible now, by source (source_of[i] is
    // the source tables[i] belongs to): one row per source with changes: source (int4), its
    // rows old and new (jsonb array), its old rows (jsonb array), whether a TRUNCATE came,
    // the number of rows.
    pg::KeptRows read_changes(const std::vector<Oid>& tables, const std::vector<int32_t>& source_of,
                              const std::optional<std::string>& since);
    // The stored size of the log rows read_changes would read.
    int64_t pending_change_bytes(const std::vector<Oid>& tables,
                                 const std::optional<std::string>& since);
    // pg_current_snapshot() as text, in the statement's snapshot.
    std::string current_snapshot();
    // Records the snapshot the view now reflects and its capture's shape, and deletes the log
    // rows of its tables that every incremental view has taken in.
    void save_incremental_state(int64_t id, const std::string& snapshot, const std::string& shape,
                                const std::vector<Oid>& tables);
    // A definition becomes incremental (or stops being: tables empty): its captured tables,
    // and no snapshot yet, so its next refresh is a full one.
    void reset_incremental_state(int64_t id, const std::vector<Oid>& tables);
    // Runs a statement derived from a view's query as its owner, in a security-restricted
    // operation, and keeps its rows.
    pg::KeptRows owner_rows(const std::string& sql, const std::vector<pg::Param>& params,
                            Oid owner);

  private:
    int install_triggers(const std::vector<std::pair<Oid, std::string>>& tables, Oid owner,
                         const std::string& owner_name, bool wait, bool capture);
    pg::Spi& spi_;
};

// Relations a swap is replacing in this backend: the sql_drop event trigger leaves their
// definitions alone, since the swap moves them to the new relations (Store::rebind).
class ReplacingRelations {
  public:
    explicit ReplacingRelations(std::vector<Oid> relids);
    ~ReplacingRelations();
    ReplacingRelations(const ReplacingRelations&) = delete;
    ReplacingRelations& operator=(const ReplacingRelations&) = delete;
    static bool contains(Oid relid);

  private:
    std::vector<Oid> relids_;
};

}  // namespace mv::catalog
