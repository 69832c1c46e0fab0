// SQL argument decoding (see args.hpp).
#include "boundary/args.hpp"

#include "boundary/jsonb.hpp"

extern "C" {
#include "datatype/timestamp.h"
#include "access/xact.h"
#include "utils/array.h"
#include "utils/timestamp.h"
#include "utils/guc.h"
}

namespace mv::pg {

std::optional<std::string> arg_text(FunctionCallInfo fcinfo, int n) {
    // text_to_cstring of a possibly toasted argument.
    if (PG_ARGISNULL(n)) return std::nullopt;
    const char* s = call([&] { return text_to_cstring(PG_GETARG_TEXT_PP(n)); });
    return std::string(s);
}

std::string arg_text_or(FunctionCallInfo fcinfo, int n, const std::string& fallback) {
    auto v = arg_text(fcinfo, n);
    return v ? *v : fallback;
}

std::optional<bool> arg_bool(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    return static_cast<bool>(PG_GETARG_BOOL(n));
}

bool arg_bool_or(FunctionCallInfo fcinfo, int n, bool fallback) {
    auto v = arg_bool(fcinfo, n);
    return v ? *v : fallback;
}

std::optional<int64_t> arg_int8(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    return static_cast<int64_t>(PG_GETARG_INT64(n));
}

std::optional<int64_t> arg_timestamptz(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    return static_cast<int64_t>(PG_GETARG_TIMESTAMPTZ(n));
}

std::optional<int64_t> arg_interval_ms(FunctionCallInfo fcinfo, int n) {
    // time + days + months, in milliseconds.
    if (PG_ARGISNULL(n)) return std::nullopt;
    Interval* iv = call([&] { return PG_GETARG_INTERVAL_P(n); });
    int64_t us = iv->time + int64_t(iv->day) * USECS_PER_DAY +
                 int64_t(iv->month) * DAYS_PER_MONTH * USECS_PER_DAY;
    return us / 1000;
}

std::optional<std::vector<std::string>> arg_text_array(FunctionCallInfo fcinfo, int n) {
    // deconstruct_array, then a copy of each element.
    if (PG_ARGISNULL(n)) return std::nullopt;
    Datum* elems = nullptr;
    bool* nulls = nullptr;
    int count = 0;
    call([&] {
        ArrayType* arr = PG_GETARG_ARRAYTYPE_P(n);
        deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
    });
    std::vector<std::string> out;
    for (int i = 0; i < count; i++) {
        if (nulls[i]) {  // the operations refuse empty names, with an error response
            out.emplace_back();
            continue;
        }
        Datum d = elems[i];
        const char* s = call([&] { return text_to_cstring(DatumGetTextPP(d)); });
        out.emplace_back(s);
    }
    return out;
}

std::optional<Json> arg_jsonb(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    Jsonb* jb = call([&] { return PG_GETARG_JSONB_P(n); });
    return from_jsonb(jb);
}

Datum return_jsonb(const Json& j) {
    return to_jsonb(j);
}

int64_t current_timestamp() {
    return GetCurrentTransactionStartTimestamp();
}

bool timestamp_is_finite(int64_t ts) {
    return !TIMESTAMP_NOT_FINITE(ts);
}

std::string timestamptz_text(int64_t ts) {
    // timestamptz_out.
    const char* out = call([&] {
        return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(ts)));
    });
    return std::string(out);
}

std::string transaction_isolation() {
    const char* v = call([] { return GetConfigOption("transaction_isolation", false, false); });
    return v ? std::string(v) : std::string();
}

}  // namespace mv::pg
