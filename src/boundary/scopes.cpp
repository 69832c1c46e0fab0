// Scoped backend state (see scopes.hpp).
#include "boundary/scopes.hpp"

#include "boundary/subxact.hpp"

#include <signal.h>

#include <chrono>

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/sinvaladt.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

namespace mv::pg {

GucScope::GucScope() {
    // Opens a GUC nest level.
    nest_level_ = call([] { return NewGUCNestLevel(); });
}

GucScope::~GucScope() {
    // Restores every GUC set at this nest level. When an error unwinds through here on its way
    // to a subtransaction rollback, that rollback would restore them too; doing it now is safe.
    int level = nest_level_;
    MemoryContext ctx = CurrentMemoryContext;
    PG_TRY();
    { AtEOXact_GUC(true, level); }
    PG_CATCH();
    {
        MemoryContextSwitchTo(ctx);
        FlushErrorState();
    }
    PG_END_TRY();
}

void GucScope::set(const std::string& name, const std::string& value) {
    // set_config_option with GUC_ACTION_SAVE, as a SET clause does.
    const char* n = name.c_str();
    const char* v = value.c_str();
    call([&] {
        (void)set_config_option(n, v, superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
                                GUC_ACTION_SAVE, true, 0, false);
    });
}

StatementTimeoutScope::StatementTimeoutScope(int64_t ms) {
    // Arms the timer unless the caller's own fires sooner.
    if (ms <= 0) return;
    had_outer_ = get_timeout_active(STATEMENT_TIMEOUT);
    if (had_outer_) outer_finish_ = get_timeout_finish_time(STATEMENT_TIMEOUT);
    TimestampTz ours = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
    if (had_outer_ && outer_finish_ <= ours) return;
    call([&] { enable_timeout_at(STATEMENT_TIMEOUT, ours); });
    armed_ = true;
    ours_ = ours;
}

namespace {
bool g_view_timeout_fired = false;
}

bool StatementTimeoutScope::fired() {
    return g_view_timeout_fired;
}

void StatementTimeoutScope::reset_fired() {
    g_view_timeout_fired = false;
}

bool is_cancel(const ErrorInfo& e) {
    // 57014 is both a cancel and a statement timeout; only ours, noted when its scope ended past
    // its deadline, is an operational failure.
    return e.sqlstate == sqlstate::query_canceled && !StatementTimeoutScope::fired();
}

StatementTimeoutScope::~StatementTimeoutScope() {
    // Puts the caller's timer back, or disarms ours; notes whether ours has fired by now (the
    // scope ends while the error it raised unwinds).
    if (!armed_) return;
    if (GetCurrentTimestamp() >= ours_) g_view_timeout_fired = true;
    bool had = had_outer_;
    TimestampTz finish = outer_finish_;
    MemoryContext ctx = CurrentMemoryContext;
    PG_TRY();
    {
        if (had)
            enable_timeout_at(STATEMENT_TIMEOUT, finish);
        else
            disable_timeout(STATEMENT_TIMEOUT, false);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(ctx);
        FlushErrorState();
    }
    PG_END_TRY();
}

RoleScope::RoleScope(Oid role, bool restricted) {
    // Switches the current user; these calls cannot raise.
    GetUserIdAndSecContext(&saved_user_, &saved_context_);
    int ctx = saved_context_ | SECURITY_LOCAL_USERID_CHANGE;
    if (restricted) ctx |= SECURITY_RESTRICTED_OPERATION;
    SetUserIdAndSecContext(role, ctx);
}

RoleScope::~RoleScope() {
    SetUserIdAndSecContext(saved_user_, saved_context_);
}

Oid current_role() {
    return GetUserId();
}

std::string role_name(Oid role) {
    // GetUserNameFromId without raising for a dropped role.
    const char* n = call([&] { return GetUserNameFromId(role, true); });
    return n ? std::string(n) : std::string();
}

namespace {

// extension_owner's answer, kept for the rest of the transaction that read it: every statement
// matviews runs asks for it, and pg_extension has no syscache. A change of the owner (REASSIGN
// OWNED) made by another session is seen from the next transaction on, as a new snapshot would
// see it; any change to pg_authid (a role dropped or renamed) forgets it at once.
Oid g_owner = InvalidOid;
LocalTransactionId g_owner_lxid = InvalidLocalTransactionId;

void forget_owner(Datum, int, uint32) {
    g_owner_lxid = InvalidLocalTransactionId;
}

}  // namespace

Oid extension_owner() {
    static bool registered = false;
    if (!registered) {
        call([] { CacheRegisterSyscacheCallback(AUTHOID, forget_owner, (Datum)0); });
        registered = true;
    }
    if (g_owner_lxid != InvalidLocalTransactionId && g_owner_lxid == MyProc->lxid) return g_owner;
    // Reads pg_extension.extowner for matviews.
    Oid owner = call([] {
        Oid ext = get_extension_oid("matviews", true);
        if (!OidIsValid(ext)) return InvalidOid;
        Relation rel = table_open(ExtensionRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
                    ObjectIdGetDatum(ext));
        SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
        HeapTuple tup = systable_getnext(scan);
        Oid result =
            HeapTupleIsValid(tup) ? ((Form_pg_extension)GETSTRUCT(tup))->extowner : InvalidOid;
        systable_endscan(scan);
        table_close(rel, AccessShareLock);
        return result;
    });
    if (owner == InvalidOid)
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "extension \"matviews\" is not installed in this database")
            .hint("Run CREATE EXTENSION matviews;");
    g_owner = owner;
    g_owner_lxid = MyProc->lxid;
    return owner;
}

bool has_privs_of(Oid role) {
    // has_privs_of_role for the current user.
    Oid me = GetUserId();
    return call([&] { return has_privs_of_role(me, role); });
}

bool has_privs_of(const std::string& role_name) {
    // get_role_oid, then has_privs_of_role; a missing role is only the superuser's.
    const char* n = role_name.c_str();
    Oid role = call([&] { return get_role_oid(n, true); });
    if (!OidIsValid(role)) return call([] { return superuser(); });
    return has_privs_of(role);
}

ViewLockKey ViewLockKey::name(const std::string& qualified_name) {
    // A 64-bit hash of the quoted, qualified name.
    const unsigned char* data = reinterpret_cast<const unsigned char*>(qualified_name.data());
    int len = static_cast<int>(qualified_name.size());
    uint64 h = call([&] { return DatumGetUInt64(hash_bytes_extended(data, len, 0x6d76)); });
    return {Kind::name, h};
}

bool try_lock_view(const ViewLockKey& key) {
    // An advisory-type lock tag in this database; field 4 (the key's kind, 'mv'..) keeps it
    // apart from pg_advisory_lock keys (which use 1 and 2) and the kinds apart from each other.
    return call([&] {
        LOCKTAG tag;
        SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32)(key.id >> 32), (uint32)key.id,
                             (uint16)key.kind);
        return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
    });
}

bool lock_relation_shared(Oid relid) {
    // LockRelationOid, then whether the pg_class row is still there (a DROP that committed while
    // we waited leaves nothing to lock); AcceptInvalidationMessages comes with the lock.
    return call([&] {
        LockRelationOid(relid, AccessShareLock);
        return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid));
    });
}

LockResult lock_relation_for_ddl(Oid relid, bool exclusive, bool wait) {
    LOCKMODE mode = exclusive ? AccessExclusiveLock : ShareRowExclusiveLock;
    return call([&] {
        if (wait)
            LockRelationOid(relid, mode);
        else if (!ConditionalLockRelationOid(relid, mode))
            return LockResult::busy;
        return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)) ? LockResult::locked
                                                                      : LockResult::gone;
    });
}

std::string session_search_path() {
    const char* v = call([] { return GetConfigOption("search_path", false, false); });
    return v ? std::string(v) : std::string();
}

std::string quote_ident(std::string_view ident) {
    // quote_identifier on a NUL-terminated copy.
    std::string s(ident);
    const char* in = s.c_str();
    const char* out = call([&] { return quote_identifier(in); });
    return std::string(out);
}

std::string quote_qualified(std::string_view schema, std::string_view name) {
    return quote_ident(schema) + "." + quote_ident(name);
}

std::string quote_literal(std::string_view s) {
    // quote_literal_cstr.
    std::string in(s);
    const char* p = in.c_str();
    const char* out = call([&] { return quote_literal_cstr(p); });
    return std::string(out);
}

int backend_pid() {
    return MyProcPid;
}

void lock_relation_exclusive(Oid relid, bool nowait) {
    // LockRelationOid / ConditionalLockRelationOid.
    if (nowait) {
        bool ok = call([&] { return ConditionalLockRelationOid(relid, AccessExclusiveLock); });
        if (!ok)
            throw Error(sqlstate::lock_not_available, kRelationBusy)
                .detail(fmt::format("Relation OID {}.", relid));
        return;
    }
    call([&] { LockRelationOid(relid, AccessExclusiveLock); });
}

void lock_relation_for_refresh(Oid relid) {
    call([&] { LockRelationOid(relid, ExclusiveLock); });
}

bool wait_for_lockers(Oid relid, long timeout_ms) {
    // Waits on the holders' virtual transactions (WaitForLockers), in slices shorter than half of
    // deadlock_timeout, and only while no holder is itself waiting for a lock. Such a wait is an
    // edge the deadlock detector cannot break: a holder that waits for a lock this transaction
    // holds (a refresh of a dependent upgrading its lock) would close a cycle, and one of the two
    // would end in 40P01. With the slices, by the time that holder's own deadlock check runs
    // (deadlock_timeout after it began waiting) this wait has ended, and no new one starts while
    // it waits: the holder goes on, and the swap's attempt times out and backs off.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        enum class Holders { none, waiting, running, waiting_for_us };
        Holders holders = call([&] {
            LOCKTAG tag;
            SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
            VirtualTransactionId* vxids = GetLockConflicts(&tag, AccessExclusiveLock, NULL);
            Holders found = Holders::none;
            for (; VirtualTransactionIdIsValid(*vxids); vxids++) {
                if (found == Holders::none) found = Holders::running;
                PGPROC* proc = BackendIdGetProc(vxids->backendId);
                if (proc == NULL) continue;
                // Read without the lock partition's lock: a hint, refreshed on every round.
                const LOCK* waiting_on = proc->waitLock;
                if (waiting_on != NULL) {
                    LOCKTAG t = waiting_on->tag;
                    // On this transaction itself, or on a lock it holds: a cycle.
                    bool on_us = t.locktag_type == LOCKTAG_VIRTUALTRANSACTION &&
                                 t.locktag_field1 == uint32(MyProc->backendId) &&
                                 t.locktag_field2 == MyProc->lxid;
                    for (LOCKMODE m = AccessShareLock; !on_us && m <= AccessExclusiveLock; m++)
                        on_us = t.locktag_type != LOCKTAG_VIRTUALTRANSACTION && LockHeldByMe(&t, m);
                    if (on_us) return Holders::waiting_for_us;
                    found = Holders::waiting;
                }
                LWLockAcquire(ProcArrayLock, LW_SHARED);
                uint8 flags = ProcGlobal->statusFlags[proc->pgxactoff];
                int pid = proc->pid;
                LWLockRelease(ProcArrayLock);
                if ((flags & PROC_IS_AUTOVACUUM) && !(flags & PROC_VACUUM_FOR_WRAPAROUND) &&
                    pid != 0) {
                    ereport(LOG, (errmsg("matviews: cancelling autovacuum (PID %d) that blocks a "
                                         "swap of relation %u",
                                         pid, relid)));
                    kill(pid, SIGINT);
                }
            }
            return found;
        });
        if (holders == Holders::none) return true;
        // A holder waits for this transaction to end, or for a lock it holds (a swap, or a
        // refresh upgrading its lock, of a view this one re-creates): neither can go on, so
        // this one stops at once rather than let both wait out every attempt.
        if (holders == Holders::waiting_for_us)
            throw Error(
                sqlstate::serialization_failure,
                fmt::format("relation {} is held by an operation that waits for this one", relid))
                .detail(
                    "Two operations each hold a lock the other needs exclusively, such as "
                    "swaps of a view and of a view that depends on it.")
                .hint("Retry the call.");
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0) return false;
        if (holders == Holders::waiting) {
            sleep_ms(5);
            continue;
        }
        long slice = std::max<long>(1, std::min<long>(left, DeadlockTimeout / 2));
        auto failure = in_subtransaction([&] {
            GucScope guc;
            guc.set("lock_timeout", std::to_string(slice));
            call([&] {
                LOCKTAG tag;
                SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
                WaitForLockers(tag, AccessExclusiveLock, false);
            });
        });
        if (failure && failure->sqlstate != sqlstate::lock_not_available) throw Error(*failure);
    }
}

MemoryScope::MemoryScope() {
    context_ = call([] {
        return AllocSetContextCreate(CurrentMemoryContext, "matviews loop", ALLOCSET_SMALL_SIZES);
    });
    previous_ = MemoryContextSwitchTo(context_);
}

MemoryScope::~MemoryScope() {
    MemoryContextSwitchTo(previous_);
    MemoryContextDelete(context_);  // cannot raise
}

bool send_query_cancel(int pid) {
    // Backends lead their own process group, so signal the group, as pg_signal_backend does.
    return pid > 0 && kill(-pid, SIGINT) == 0;
}

void sleep_ms(long ms) {
    // WaitLatch with a timeout, like pg_sleep.
    call([&] {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    });
}

double random_fraction() {
    return pg_prng_double(&pg_global_prng_state);
}

}  // namespace mv::pg
