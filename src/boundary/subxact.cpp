// The subtransaction scope (see subxact.hpp).
#include "boundary/subxact.hpp"

namespace mv::pg {

std::optional<ErrorInfo> in_subtransaction(const std::function<void()>& step) {
    // Begin, run, then release or roll back, restoring the caller's memory context and resource
    // owner either way, as PL/pgSQL's exception blocks do.
    MemoryContext oldcxt = CurrentMemoryContext;
    ResourceOwner oldowner = CurrentResourceOwner;
    call([] { BeginInternalSubTransaction(nullptr); });
    // Run the step in the caller's memory context so that what it returns outlives the subxact.
    MemoryContextSwitchTo(oldcxt);

    std::optional<ErrorInfo> failure;
    try {
        step();
    } catch (const Error& e) {
        failure = e.info();
    } catch (const std::bad_alloc&) {
        failure = ErrorInfo{sqlstate::out_of_memory, "out of memory", "", "", ""};
    } catch (const std::exception& e) {
        failure = ErrorInfo{sqlstate::internal_error, "matviews: internal error", e.what(), "", ""};
    }

    if (failure) {
        call([] { RollbackAndReleaseCurrentSubTransaction(); });
    } else {
        call([] { ReleaseCurrentSubTransaction(); });
    }
    MemoryContextSwitchTo(oldcxt);
    CurrentResourceOwner = oldowner;
    return failure;
}

}  // namespace mv::pg
