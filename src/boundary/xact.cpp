// Transactions of background processes (see xact.hpp).
#include "boundary/xact.hpp"

extern "C" {
#include "access/xact.h"
#include "pgstat.h"
#include "utils/snapmgr.h"
}

namespace mv::pg {

namespace {

void begin() {
    // Start a transaction with an active snapshot.
    call([] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
    });
}

void commit() {
    // Pop the snapshot and commit.
    call([] {
        if (ActiveSnapshotSet()) PopActiveSnapshot();
        CommitTransactionCommand();
    });
}

void abort_after_error() {
    // What a worker's error recovery does: abort the transaction, which releases locks, buffer
    // pins, SPI and memory the error left behind.
    MemoryContext ctx = CurrentMemoryContext;
    PG_TRY();
    { AbortCurrentTransaction(); }
    PG_CATCH();
    {
        MemoryContextSwitchTo(ctx);
        FlushErrorState();
    }
    PG_END_TRY();
}

}  // namespace

void in_transaction(const std::function<void(Spi&)>& work) {
    in_transaction_plain([&] {
        Spi spi;
        work(spi);
    });
}

void in_transaction_plain(const std::function<void()>& work) {
    // begin; work; commit — or abort and rethrow. The commit is inside the try too: a commit
    // that fails (a deferred constraint, a serialization failure at commit, an error in a
    // pre-commit callback) leaves the transaction open and failed, and only the abort brings
    // the process back to no transaction, so the next unit of work can begin.
    begin();
    try {
        work();
        commit();
    } catch (...) {
        abort_after_error();
        throw;
    }
}

}  // namespace mv::pg
