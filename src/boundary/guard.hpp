// The C++/PostgreSQL boundary. Two guards keep the two error regimes apart:
//
//  * pg::call(fn) runs PostgreSQL code that may raise ERROR (longjmp). It catches the error with
//    PG_TRY, copies its ErrorData into a C++ PgError and throws that after the PG_TRY frame is
//    gone. fn must be a plain C-style lambda: no object with a destructor may live inside it.
//    A PgError leaves PostgreSQL's state as the error left it, so it must end either in a
//    subtransaction rollback (boundary/subxact.hpp) or at an entry guard, which re-raises it.
//
//  * MV_FUNCTION(name) defines a SQL-callable function whose body may throw. Any C++ exception is
//    caught, every C++ frame unwinds, and only then is it raised with ereport, keeping SQLSTATE,
//    message, detail, hint and context. guard_worker does the same for background workers.
//
// No other module uses PG_TRY, ereport or elog; they throw mv::Error and log through here.
#pragma once

#include "boundary/pg.hpp"
#include "core/error.hpp"

namespace mv {

// A PostgreSQL ERROR caught by pg::call, carrying the fields of its ErrorData.
class PgError : public Error {
  public:
    PgError(ErrorInfo info, int sqlerrcode) : Error(std::move(info)), sqlerrcode_(sqlerrcode) {}
    int sqlerrcode() const { return sqlerrcode_; }

  private:
    int sqlerrcode_;
};

namespace pg {

// PostgreSQL's tree walkers (query_tree_walker, expression_tree_walker) take a callback declared
// without parameters; the cast goes through void (*)(void), which is how C++ says "any function
// pointer". The callback is called from PostgreSQL's frames: it must not throw.
using Walker = bool (*)();
template <typename F>
Walker as_walker(F* fn) {
    return reinterpret_cast<Walker>(reinterpret_cast<void (*)(void)>(fn));
}

namespace detail {
// What a guarded call left behind: a PostgreSQL error, a C++ exception, or nothing.
struct Outcome {
    ErrorData* pg_error = nullptr;
    std::exception_ptr cpp_error;
};
void capture_pg_error(Outcome& out, MemoryContext ctx);
[[noreturn]] void throw_pg_error(ErrorData* edata);
inline void rethrow(Outcome& out) {
    if (out.pg_error) throw_pg_error(out.pg_error);
    if (out.cpp_error) std::rethrow_exception(out.cpp_error);
}
}  // namespace detail

// Runs fn, which calls PostgreSQL functions that may raise ERROR; a raised error becomes PgError.
// The result type must be trivially copyable (a Datum, pointer, Oid, number or bool).
template <typename F>
auto call(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    detail::Outcome out;
    MemoryContext ctx = CurrentMemoryContext;
    if constexpr (std::is_void_v<R>) {
        PG_TRY();
        {
            try {
                fn();
            } catch (...) {
                out.cpp_error = std::current_exception();
            }
        }
        PG_CATCH();
        { detail::capture_pg_error(out, ctx); }
        PG_END_TRY();
        detail::rethrow(out);
    } else {
        static_assert(std::is_trivially_copyable_v<R>,
                      "pg::call returns only plain values; build C++ objects outside the call");
        volatile R result{};
        PG_TRY();
        {
            try {
                result = fn();
            } catch (...) {
                out.cpp_error = std::current_exception();
            }
        }
        PG_CATCH();
        { detail::capture_pg_error(out, ctx); }
        PG_END_TRY();
        detail::rethrow(out);
        return result;
    }
}

// CHECK_FOR_INTERRUPTS() through the guard: a cancel becomes PgError (SQLSTATE 57014).
void check_for_interrupts();

// Converts a five-character SQLSTATE to PostgreSQL's packed code, and back.
int pack_sqlstate(const std::string& code);
std::string unpack_sqlstate(int sqlerrcode);

// Server log messages at the given level, through the guard.
enum class LogLevel { debug, log, notice, warning };
void log(LogLevel level, const std::string& message);

// Raises info as ereport(ERROR). Only for plain C frames: entry guards, worker mains.
[[noreturn]] void raise_error(const ErrorInfo& info);

// Runs body and raises anything it throws as ERROR once its frames have unwound.
Datum guard_entry(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo);
void guard_worker(void (*body)(Datum), Datum arg);

}  // namespace pg
}  // namespace mv

// Defines a SQL-callable C function `name` whose body runs under the entry guard.
#define MV_FUNCTION(name)                                  \
    extern "C" {                                           \
    PG_FUNCTION_INFO_V1(name);                             \
    }                                                      \
    static Datum name##_body(FunctionCallInfo fcinfo);     \
    extern "C" Datum name(PG_FUNCTION_ARGS) {              \
        return ::mv::pg::guard_entry(name##_body, fcinfo); \
    }                                                      \
    static Datum name##_body(FunctionCallInfo fcinfo)
