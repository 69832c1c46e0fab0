// Scoped changes of backend state, each undone when the scope ends: GUC values (like a
// function's SET clause), the statement timeout timer, the current user; plus the per-view lock
// that never waits.
#pragma once

#include "boundary/guard.hpp"

namespace mv::pg {

// Sets GUCs for the scope's lifetime, like a function's SET clause (GUC nest level).
class GucScope {
  public:
    GucScope();
    ~GucScope();
    GucScope(const GucScope&) = delete;
    GucScope& operator=(const GucScope&) = delete;
    // Sets name to value; an invalid value raises PgError (22023 and the like).
    void set(const std::string& name, const std::string& value);

  private:
    int nest_level_;
};

// Arms the statement timeout timer to fire after `ms` (if sooner than the caller's own), and
// puts the caller's timer back when the scope ends. GUCs cannot do this inside one statement:
// statement_timeout is only read when a statement starts.
class StatementTimeoutScope {
  public:
    explicit StatementTimeoutScope(int64_t ms);
    ~StatementTimeoutScope();
    StatementTimeoutScope(const StatementTimeoutScope&) = delete;
    StatementTimeoutScope& operator=(const StatementTimeoutScope&) = delete;

    // Whether a statement timeout that fired in this backend was one a StatementTimeoutScope
    // armed (a per-view timeout), rather than the session's own; cleared by reset_fired().
    static bool fired();
    static void reset_fired();

  private:
    bool armed_ = false;
    bool had_outer_ = false;
    int64_t outer_finish_ = 0;
    int64_t ours_ = 0;
};

// Whether an error must be raised as PostgreSQL raised it rather than answered as data: a query
// cancel, or a statement timeout other than a per-view one (SPEC §8).
bool is_cancel(const ErrorInfo& e);

// Runs as another role for the scope's lifetime (SetUserIdAndSecContext), as REFRESH and
// PostgreSQL's RI triggers do. `restricted` adds SECURITY_RESTRICTED_OPERATION.
class RoleScope {
  public:
    RoleScope(Oid role, bool restricted);
    ~RoleScope();
    RoleScope(const RoleScope&) = delete;
    RoleScope& operator=(const RoleScope&) = delete;

  private:
    Oid saved_user_;
    int saved_context_;
};

// The role running the current statement (GetUserId()).
Oid current_role();
// The name of a role, or "" when it does not exist.
std::string role_name(Oid role);
// The owner of the matviews extension in this database.
Oid extension_owner();
// Whether the current role has the privileges of `role` (is the owner, a member, or superuser).
bool has_privs_of(Oid role);
// The same for a role given by name; false when no such role exists (unless superuser).
bool has_privs_of(const std::string& role_name);

// The key of the per-view operation lock: something a swap does not change. A managed view is
// locked by its definition's id (a swap gives the view a new OID, never a new definition), a view
// that is not managed by its OID, and a view that does not exist yet (create) by its name.
struct ViewLockKey {
    enum class Kind : uint16 { definition = 0x6d76, relation = 0x6d77, name = 0x6d78 };
    Kind kind;
    uint64 id;
    static ViewLockKey definition(int64_t id) { return {Kind::definition, uint64(id)}; }
    static ViewLockKey relation(Oid oid) { return {Kind::relation, uint64(oid)}; }
    static ViewLockKey name(const std::string& qualified_name);
};

// Takes the transaction-level lock that serializes matviews operations on one view. Never
// waits: false when another session holds it.
bool try_lock_view(const ViewLockKey& key);

// Takes AccessShareLock on a relation (held to the end of the transaction), as PostgreSQL's own
// commands do once they have resolved a name: from then on it cannot be dropped, renamed or moved
// to another schema, so the name matviews derived from the OID keeps meaning that relation.
// Waits as the lock manager does (lock_timeout, cancel). False when the relation is gone.
bool lock_relation_shared(Oid relid);
// Locks a relation for DDL on it, for this transaction: `exclusive` ACCESS EXCLUSIVE (DROP
// TRIGGER), else SHARE ROW EXCLUSIVE (CREATE TRIGGER); waiting (under lock_timeout) or, with
// wait false, only if it is free now. By OID, so the name is read again under the lock.
enum class LockResult { locked, busy, gone };
LockResult lock_relation_for_ddl(Oid relid, bool exclusive, bool wait);

// The session's search_path setting as the caller set it (for create, which records it and
// creates the view under it).
std::string session_search_path();

// PostgreSQL's quote_identifier, and schema.name with both parts quoted.
std::string quote_ident(std::string_view ident);
std::string quote_qualified(std::string_view schema, std::string_view name);
// A SQL string literal (quote_literal).
std::string quote_literal(std::string_view s);

// The current backend's process id.
int backend_pid();

// Takes AccessExclusiveLock on a relation, held to the end of the (sub)transaction. With
// nowait it never queues: 55P03 when the lock is not free at once; otherwise it waits as the
// lock manager does, bounded by lock_timeout (55P03 on timeout). Works on materialized views,
// which LOCK TABLE refuses.
void lock_relation_exclusive(Oid relid, bool nowait);

// Takes ExclusiveLock on a relation, waiting for it, as REFRESH ... CONCURRENTLY does: readers
// go on, other refreshes and DDL wait.
void lock_relation_for_refresh(Oid relid);

// The message of lock_relation_exclusive(nowait) when the lock is taken: the relation is busy.
inline constexpr const char* kRelationBusy = "could not obtain lock on relation without waiting";

// Waits, without joining the relation's lock queue (so readers never wait behind it) and without
// a wait the deadlock detector would see, until no transaction holds a lock conflicting with
// AccessExclusiveLock on relid; false once timeout_ms has passed. A non-wraparound autovacuum
// among them is cancelled, as PostgreSQL's own lock waits do after deadlock_timeout.
bool wait_for_lockers(Oid relid, long timeout_ms);

// Sleeps on the process latch for ms milliseconds, answering interrupts (a cancel raises PgError).
void sleep_ms(long ms);

// A memory context for one iteration of a long loop: everything PostgreSQL allocates while the
// scope is current (parameters, detoasted values) is freed when it ends.
class MemoryScope {
  public:
    MemoryScope();
    ~MemoryScope();
    MemoryScope(const MemoryScope&) = delete;
    MemoryScope& operator=(const MemoryScope&) = delete;

  private:
    MemoryContext context_;
    MemoryContext previous_;
};

// Sends a query cancel (SIGINT, as pg_cancel_backend does) to a backend of this cluster; false
// when no such process exists any more.
bool send_query_cancel(int pid);
// A uniformly distributed number in [0, 1) from PostgreSQL's global PRNG.
double random_fraction();

}  // namespace mv::pg
