// The ProcessUtility hook (see hooks.hpp). It is a plain C frame: nothing in it owns resources,
// so an error raised by a PostgreSQL call passes through it safely.
#include "worker/hooks.hpp"

#include "worker/shmem.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "tcop/utility.h"
}

namespace mv::worker {

namespace {

ProcessUtility_hook_type prev_utility_hook = nullptr;

Oid database_needing_exclusive_use(Node* stmt) {
    // The database a statement needs without other sessions, or InvalidOid.
    const char* name = nullptr;
    if (IsA(stmt, DropdbStmt)) {
        name = reinterpret_cast<DropdbStmt*>(stmt)->dbname;
    } else if (IsA(stmt, RenameStmt) &&
               reinterpret_cast<RenameStmt*>(stmt)->renameType == OBJECT_DATABASE) {
        name = reinterpret_cast<RenameStmt*>(stmt)->subname;
    } else if (IsA(stmt, AlterDatabaseStmt)) {
        name = reinterpret_cast<AlterDatabaseStmt*>(stmt)->dbname;
    } else if (IsA(stmt, CreatedbStmt)) {
        ListCell* lc;
        foreach (lc, reinterpret_cast<CreatedbStmt*>(stmt)->options) {
            DefElem* opt = lfirst_node(DefElem, lc);
            if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL) name = defGetString(opt);
        }
    }
    return name ? get_database_oid(name, true) : InvalidOid;
}

extern "C" void matviews_process_utility(PlannedStmt* pstmt, const char* query, bool read_only_tree,
                                         ProcessUtilityContext context, ParamListInfo params,
                                         QueryEnvironment* env, DestReceiver* dest,
                                         QueryCompletion* qc) {
    // Stops the scheduler of the affected database, then runs the statement.
    Oid db = database_needing_exclusive_use(pstmt->utilityStmt);
    if (OidIsValid(db)) stop_scheduler(db, 5000);
    if (prev_utility_hook)
        prev_utility_hook(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

}  // namespace

void install_utility_hook() {
    // Chains the hook in front of any other.
    prev_utility_hook = ProcessUtility_hook;
    ProcessUtility_hook = matviews_process_utility;
}

}  // namespace mv::worker
