// Per-view options (see options.hpp).
#include "ops/options.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace mv::ops {

namespace {

constexpr const char* kOptionsHint =
    "Valid options: lock_timeout and statement_timeout (a duration such as '5s' or milliseconds), "
    "max_retries (an integer >= 0), retry_delay (an interval such as '30 seconds', or seconds).";

// The largest lock_timeout or statement_timeout PostgreSQL accepts (INT_MAX milliseconds).
constexpr int64_t kMaxTimeoutMs = 2147483647;

[[noreturn]] void bad_option(const std::string& key, const std::string& why) {
    throw Error(sqlstate::invalid_parameter_value,
                fmt::format("invalid value for option \"{}\"", key))
        .detail(why)
        .hint(kOptionsHint);
}

std::optional<int64_t> parse_duration_ms(const std::string& key, const Json& v) {
    // A duration in GUC syntax ('5s', '100ms', '1min') or a number of milliseconds.
    if (v.is_null()) return std::nullopt;
    if (v.is_int()) {
        // The range of PostgreSQL's lock_timeout and statement_timeout (an int of ms).
        if (v.as_int() < 0) bad_option(key, "It must not be negative.");
        if (v.as_int() > kMaxTimeoutMs)
            bad_option(key, fmt::format("It must be at most {} milliseconds.", kMaxTimeoutMs));
        return v.as_int();
    }
    if (!v.is_string())
        bad_option(key, "It must be a string such as '5s' or a number of milliseconds.");
    const char* text = v.as_string().c_str();
    int ms = 0;
    bool ok = pg::call([&] { return parse_int(text, &ms, GUC_UNIT_MS, nullptr); });
    if (!ok || ms < 0) bad_option(key, fmt::format("\"{}\" is not a duration.", v.as_string()));
    return ms;
}

}  // namespace

std::optional<int64_t> duration_ms(const Json& options, const char* key) {
    const Json* v = options.find(key);
    if (v == nullptr) return std::nullopt;
    return parse_duration_ms(key, *v);
}

Json validate_options(catalog::Store& store, const Json& options) {
    // Checks each member by key.
    if (!options.is_object())
        throw Error(sqlstate::invalid_parameter_value, "options must be a JSON object")
            .hint(kOptionsHint);
    for (const auto& [key, v] : options.as_object()) {
        if (v.is_null()) continue;
        if (key == "lock_timeout" || key == "statement_timeout") {
            parse_duration_ms(key, v);
        } else if (key == "max_retries") {
            if (!v.is_int() || v.as_int() < 0 || v.as_int() > 1000)
                bad_option(key, "It must be an integer from 0 to 1000.");
        } else if (key == "retry_delay") {
            if (v.is_int()) {
                if (v.as_int() <= 0) bad_option(key, "It must be positive.");
            } else if (v.is_string()) {
                int64_t us = 0;
                try {
                    us = store.interval_us(v.as_string());
                } catch (const PgError& e) {
                    // Not an interval (22007, 22008, ...): an invalid option value, as for the
                    // other options; the operation's subtransaction cleans up after the error.
                    bad_option(key, fmt::format("\"{}\" is not an interval: {}", v.as_string(),
                                                e.info().message));
                }
                if (us <= 0) bad_option(key, "It must be positive.");
            } else {
                bad_option(key,
                           "It must be an interval such as '30 seconds' or a number of seconds.");
            }
        } else {
            throw Error(sqlstate::invalid_parameter_value,
                        fmt::format("unknown option \"{}\"", key))
                .hint(kOptionsHint);
        }
    }
    return options;
}

Json merge_options(const Json& base, const Json& changes) {
    // Shallow merge; null removes.
    if (!changes.is_object())
        throw Error(sqlstate::invalid_parameter_value, "options must be a JSON object")
            .hint(kOptionsHint);
    Json out = base.is_object() ? base : Json::object();
    for (const auto& [key, v] : changes.as_object()) {
        if (v.is_null())
            out.erase(key);
        else
            out.set(key, v);
    }
    return out;
}

ViewTimeouts::ViewTimeouts(const Json& options) {
    // lock_timeout through a GUC scope; statement_timeout through the timer.
    if (auto lock = duration_ms(options, "lock_timeout")) {
        guc_.emplace();
        guc_->set("lock_timeout", std::to_string(*lock));
    }
    if (auto stmt = duration_ms(options, "statement_timeout")) {
        if (*stmt > 0) statement_.emplace(*stmt);
    }
}

}  // namespace mv::ops
