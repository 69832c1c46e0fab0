// The ProcessUtility hook (see hooks.hpp). It is a plain C frame: nothing in it owns resources,
// so an error raised by a PostgreSQL call passes through it safely.
//
// The hook acts before standard_ProcessUtility, so it repeats the checks PostgreSQL makes before
// a statement looks for other sessions: a statement PostgreSQL would refuse (not the owner, no
// CREATEDB, the current database, inside a transaction block, a name that does not exist or is
// taken) must not stop anybody's background work. Anything refused later than that point
// (other users' sessions, a failed copy) pauses the scheduler for at most its pause window.
// After the statement, a REFRESH MATERIALIZED VIEW that ran is noted as a change for watches.
#include "worker/hooks.hpp"

#include "worker/shmem.hpp"

#include "boundary/capture.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/tablespace.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/syscache.h"
}

namespace mv::worker {

namespace {

ProcessUtility_hook_type prev_utility_hook = nullptr;

bool has_createdb() {
    // The role attribute PostgreSQL's createdb and RenameDatabase require (superusers pass).
    if (superuser()) return true;
    HeapTuple tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
    if (!HeapTupleIsValid(tuple)) return false;
    bool result = reinterpret_cast<Form_pg_authid>(GETSTRUCT(tuple))->rolcreatedb;
    ReleaseSysCache(tuple);
    return result;
}

struct DatabaseFacts {
    bool is_template = false;
    Oid tablespace = InvalidOid;  // movedb returns at once, seeing no one, when nothing moves
};

DatabaseFacts database_facts(Oid db) {
    DatabaseFacts facts;
    HeapTuple tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(db));
    if (!HeapTupleIsValid(tuple)) return facts;
    auto* form = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
    facts.is_template = form->datistemplate;
    facts.tablespace = form->dattablespace;
    ReleaseSysCache(tuple);
    return facts;
}

const char* option_value(List* options, const char* name) {
    ListCell* lc;
    foreach (lc, options) {
        DefElem* opt = lfirst_node(DefElem, lc);
        if (strcmp(opt->defname, name) == 0 && opt->arg != NULL) return defGetString(opt);
    }
    return nullptr;
}

Oid dropped_database(DropdbStmt* stmt) {
    // dropdb: owner, not a template, not the current database.
    Oid db = get_database_oid(stmt->dbname, true);
    if (!OidIsValid(db) || db == MyDatabaseId || database_facts(db).is_template) return InvalidOid;
    return pg_database_ownercheck(db, GetUserId()) ? db : InvalidOid;
}

Oid renamed_database(RenameStmt* stmt) {
    // RenameDatabase: owner with CREATEDB, not the current database, a free new name.
    Oid db = get_database_oid(stmt->subname, true);
    if (!OidIsValid(db) || db == MyDatabaseId) return InvalidOid;
    if (!pg_database_ownercheck(db, GetUserId()) || !has_createdb()) return InvalidOid;
    return OidIsValid(get_database_oid(stmt->newname, true)) ? InvalidOid : db;
}

Oid moved_database(AlterDatabaseStmt* stmt) {
    // movedb (ALTER DATABASE ... SET TABLESPACE, the only form that needs the database alone):
    // owner, not the current database, CREATE on the target tablespace.
    const char* tablespace = option_value(stmt->options, "tablespace");
    if (tablespace == nullptr) return InvalidOid;
    Oid db = get_database_oid(stmt->dbname, true);
    if (!OidIsValid(db) || db == MyDatabaseId) return InvalidOid;
    if (!pg_database_ownercheck(db, GetUserId())) return InvalidOid;
    Oid space = get_tablespace_oid(tablespace, true);
    if (!OidIsValid(space) || space == database_facts(db).tablespace) return InvalidOid;
    return pg_tablespace_aclcheck(space, GetUserId(), ACL_CREATE) == ACLCHECK_OK ? db : InvalidOid;
}

Oid copied_database(CreatedbStmt* stmt) {
    // createdb: CREATEDB, a free name, and a template that is marked as one or owned by the user.
    const char* name = option_value(stmt->options, "template");
    if (name == nullptr || !has_createdb()) return InvalidOid;
    if (OidIsValid(get_database_oid(stmt->dbname, true))) return InvalidOid;
    Oid db = get_database_oid(name, true);
    if (!OidIsValid(db)) return InvalidOid;
    return database_facts(db).is_template || pg_database_ownercheck(db, GetUserId()) ? db
                                                                                     : InvalidOid;
}

Oid database_needing_exclusive_use(Node* stmt, ProcessUtilityContext context) {
    // The database a statement, if PostgreSQL lets it start, needs without other sessions; else
    // InvalidOid. Every one of these statements refuses to run in a transaction block except
    // RENAME, and is refused below top level.
    if (IsA(stmt, RenameStmt)) {
        auto* rename = reinterpret_cast<RenameStmt*>(stmt);
        return rename->renameType == OBJECT_DATABASE ? renamed_database(rename) : InvalidOid;
    }
    bool blockable =
        IsA(stmt, DropdbStmt) || IsA(stmt, CreatedbStmt) || IsA(stmt, AlterDatabaseStmt);
    if (!blockable || context != PROCESS_UTILITY_TOPLEVEL || IsTransactionBlock() ||
        IsSubTransaction())
        return InvalidOid;
    if (IsA(stmt, DropdbStmt)) return dropped_database(reinterpret_cast<DropdbStmt*>(stmt));
    if (IsA(stmt, AlterDatabaseStmt))
        return moved_database(reinterpret_cast<AlterDatabaseStmt*>(stmt));
    return copied_database(reinterpret_cast<CreatedbStmt*>(stmt));
}

extern "C" void matviews_process_utility(PlannedStmt* pstmt, const char* query, bool read_only_tree,
                                         ProcessUtilityContext context, ParamListInfo params,
                                         QueryEnvironment* env, DestReceiver* dest,
                                         QueryCompletion* qc) {
    // Stops the scheduler of the affected database, then runs the statement.
    Oid db = database_needing_exclusive_use(pstmt->utilityStmt, context);
    if (OidIsValid(db)) stop_scheduler(db, 5000);
    if (prev_utility_hook)
        prev_utility_hook(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    // A REFRESH that PostgreSQL carried out is a change to the views that read this one (a
    // watch's cascade); it counts when the transaction commits (boundary/capture.hpp).
    if (IsA(pstmt->utilityStmt, RefreshMatViewStmt)) {
        auto* refresh = reinterpret_cast<RefreshMatViewStmt*>(pstmt->utilityStmt);
        Oid relid = RangeVarGetRelid(refresh->relation, NoLock, true);
        if (OidIsValid(relid)) pg::note_change(relid);
    }
}

}  // namespace

void install_utility_hook() {
    // Chains the hook in front of any other.
    prev_utility_hook = ProcessUtility_hook;
    ProcessUtility_hook = matviews_process_utility;
}

}  // namespace mv::worker
