// The two guards of the C++/PostgreSQL boundary and the error plumbing they share: converting
// ErrorData to PgError, raising C++ errors as ereport, and logging.
#include "boundary/guard.hpp"

namespace mv::pg {

namespace {

// An error about to be raised, held in palloc'd C strings so that no C++ object is alive when
// ereport longjmps.
struct PendingError {
    int sqlerrcode;
    const char* message;
    const char* detail;
    const char* hint;
    const char* context;
};

const char* copy_or_null(const std::string& s) {
    // Copies s into the current memory context, or returns nullptr when s is empty or memory ran
    // out (never raises).
    if (s.empty()) return nullptr;
    char* p = static_cast<char*>(
        MemoryContextAllocExtended(CurrentMemoryContext, s.size() + 1, MCXT_ALLOC_NO_OOM));
    if (p == nullptr) return nullptr;
    std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

PendingError pending_from(const ErrorInfo& info) {
    // Copies an ErrorInfo into a PendingError; never throws past the copies themselves.
    PendingError p{};
    p.sqlerrcode = pack_sqlstate(info.sqlstate);
    p.message = copy_or_null(info.message);
    if (p.message == nullptr) p.message = "matviews: unknown error";
    p.detail = copy_or_null(info.detail);
    p.hint = copy_or_null(info.hint);
    p.context = copy_or_null(info.context);
    return p;
}

PendingError pending_internal(const char* what) {
    // A PendingError for a C++ exception that is not an mv::Error.
    PendingError p{};
    p.sqlerrcode = ERRCODE_INTERNAL_ERROR;
    p.message = what;
    return p;
}

[[noreturn]] void raise_pending(const PendingError& p) {
    // ereport(ERROR) from a plain frame.
    ereport(ERROR,
            (errcode(p.sqlerrcode), errmsg_internal("%s", p.message),
             p.detail ? errdetail_internal("%s", p.detail) : 0, p.hint ? errhint("%s", p.hint) : 0,
             p.context ? errcontext_msg("%s", p.context) : 0));
    pg_unreachable();
}

// Converts the exception in flight into a PendingError. Called only from a catch (...) block.
PendingError pending_from_current_exception() {
    try {
        throw;
    } catch (const Error& e) {
        return pending_from(e.info());
    } catch (const std::bad_alloc&) {
        PendingError p{};
        p.sqlerrcode = ERRCODE_OUT_OF_MEMORY;
        p.message = "out of memory";
        p.detail = "matviews could not allocate memory.";
        return p;
    } catch (const std::exception& e) {
        PendingError p = pending_internal("matviews: internal error");
        p.detail = copy_or_null(e.what());
        return p;
    } catch (...) {
        return pending_internal("matviews: internal error (unknown exception)");
    }
}

}  // namespace

namespace detail {

void capture_pg_error(Outcome& out, MemoryContext ctx) {
    // Copies the current ErrorData out of ErrorContext and clears the error state.
    MemoryContextSwitchTo(ctx);
    out.pg_error = CopyErrorData();
    FlushErrorState();
}

void throw_pg_error(ErrorData* edata) {
    // Builds a PgError from edata, frees edata and throws.
    ErrorInfo info;
    info.sqlstate = unpack_sqlstate(edata->sqlerrcode);
    if (edata->message) info.message = edata->message;
    if (edata->detail) info.detail = edata->detail;
    if (edata->hint) info.hint = edata->hint;
    if (edata->context) info.context = edata->context;
    int code = edata->sqlerrcode;
    FreeErrorData(edata);
    throw PgError(std::move(info), code);
}

}  // namespace detail

void check_for_interrupts() {
    // CHECK_FOR_INTERRUPTS() under the guard.
    call([] { CHECK_FOR_INTERRUPTS(); });
}

int pack_sqlstate(const std::string& code) {
    // "42602" -> MAKE_SQLSTATE('4','2','6','0','2'); malformed codes become XX000.
    if (code.size() != 5) return ERRCODE_INTERNAL_ERROR;
    for (char c : code)
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return ERRCODE_INTERNAL_ERROR;
    return MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]);
}

std::string unpack_sqlstate(int sqlerrcode) {
    // The inverse of pack_sqlstate, without allocating in PostgreSQL.
    std::string s(5, '0');
    for (int i = 0; i < 5; i++) {
        s[i] = static_cast<char>(PGUNSIXBIT(sqlerrcode));
        sqlerrcode >>= 6;
    }
    return s;
}

void log(LogLevel level, const std::string& message) {
    // Writes message to the server log (and the client, for notice and warning).
    int elevel = LOG;
    switch (level) {
        case LogLevel::debug:
            elevel = DEBUG1;
            break;
        case LogLevel::log:
            elevel = LOG;
            break;
        case LogLevel::notice:
            elevel = NOTICE;
            break;
        case LogLevel::warning:
            elevel = WARNING;
            break;
    }
    const char* msg = message.c_str();
    call([&] { ereport(elevel, (errmsg_internal("%s", msg))); });
}

void raise_error(const ErrorInfo& info) {
    // ereport(ERROR) with the fields of info.
    raise_pending(pending_from(info));
}

Datum guard_entry(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo) {
    // The entry guard: runs body; anything it throws is raised once its frames are gone.
    PendingError pending;
    try {
        return body(fcinfo);
    } catch (...) {
        pending = pending_from_current_exception();
    }
    raise_pending(pending);
}

void guard_worker(void (*body)(Datum), Datum arg) {
    // The worker entry guard: the same as guard_entry for a background worker's main function.
    PendingError pending;
    try {
        body(arg);
        return;
    } catch (...) {
        pending = pending_from_current_exception();
    }
    raise_pending(pending);
}

}  // namespace mv::pg
