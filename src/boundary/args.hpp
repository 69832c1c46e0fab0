// Reading SQL function arguments into C++ values, and returning jsonb, under the guard.
#pragma once

#include "boundary/guard.hpp"
#include "core/json.hpp"

namespace mv::pg {

std::optional<std::string> arg_text(FunctionCallInfo fcinfo, int n);
std::string arg_text_or(FunctionCallInfo fcinfo, int n, const std::string& fallback);
std::optional<bool> arg_bool(FunctionCallInfo fcinfo, int n);
bool arg_bool_or(FunctionCallInfo fcinfo, int n, bool fallback);
// A text[] argument; a null element becomes an empty string.
std::optional<std::vector<std::string>> arg_text_array(FunctionCallInfo fcinfo, int n);
std::optional<Json> arg_jsonb(FunctionCallInfo fcinfo, int n);
std::optional<int64_t> arg_int8(FunctionCallInfo fcinfo, int n);
// A timestamptz argument (microseconds since 2000-01-01, PostgreSQL's representation).
std::optional<int64_t> arg_timestamptz(FunctionCallInfo fcinfo, int n);
// An interval argument in milliseconds (a month counts as 30 days).
std::optional<int64_t> arg_interval_ms(FunctionCallInfo fcinfo, int n);

// The current transaction's start time (now()) as a TimestampTz.
int64_t current_timestamp();
// Whether a TimestampTz is a time (not infinity or -infinity).
bool timestamp_is_finite(int64_t ts);
// A TimestampTz as timestamptz's text output, in the session's time zone and DateStyle.
std::string timestamptz_text(int64_t ts);
// The current transaction's isolation level, as transaction_isolation shows it.
std::string transaction_isolation();

// The jsonb Datum of a response.
Datum return_jsonb(const Json& j);

}  // namespace mv::pg
