// The operation runner (see runner.hpp).
#include "ops/runner.hpp"

#include "boundary/scopes.hpp"
#include "boundary/subxact.hpp"
#include "boundary/timezone.hpp"

namespace mv::ops {

RowCountStrategy parse_row_count_strategy(const std::optional<std::string>& s,
                                          RowCountStrategy fallback) {
    // none | estimated | exact.
    if (!s) return fallback;
    if (*s == "none") return RowCountStrategy::none;
    if (*s == "estimated") return RowCountStrategy::estimated;
    if (*s == "exact") return RowCountStrategy::exact;
    throw Error(sqlstate::invalid_parameter_value,
                fmt::format("invalid row_count_strategy \"{}\"", *s))
        .hint("Use 'none', 'estimated' or 'exact'.");
}

std::string to_string(RowCountStrategy s) {
    switch (s) {
        case RowCountStrategy::none:
            return "none";
        case RowCountStrategy::estimated:
            return "estimated";
        case RowCountStrategy::exact:
            return "exact";
    }
    return "none";
}

std::string check_strategy(const std::string& s, const char* argument) {
    // regular | concurrent | swap | incremental.
    if (s == "regular" || s == "concurrent" || s == "swap" || s == "incremental") return s;
    throw Error(sqlstate::invalid_parameter_value, fmt::format("invalid {} \"{}\"", argument, s))
        .hint("Use 'regular', 'concurrent', 'swap' or 'incremental'.");
}

void Context::execute(const std::string& sql) {
    // Lists the statement first, so a failing one shows in the error response too.
    sql_.push_back(sql);
    store.execute(sql);
}

void Context::execute_owner_code(const std::string& sql,
                                 const std::optional<std::string>& search_path) {
    sql_.push_back(sql);
    store.execute_owner_code(sql, search_path ? search_path : caller_search_path);
}

void Context::skip(const std::string& reason) {
    status = "skipped";
    response.set("reason", reason);
}

bool Context::lock_view(const pg::ViewLockKey& key) {
    if (pg::try_lock_view(key)) return true;
    skip("already running");
    return false;
}

std::optional<int64_t> Context::count_rows(const catalog::RelationInfo& rel, RowCountStrategy s) {
    // none: null; estimated: pg_class.reltuples; exact: count(*) (null while unpopulated).
    switch (s) {
        case RowCountStrategy::none:
            return std::nullopt;
        case RowCountStrategy::estimated:
            return catalog::estimated_rows(rel.oid);
        case RowCountStrategy::exact:
            return catalog::exact_rows(spi, rel);
    }
    return std::nullopt;
}

Json error_json(const ErrorInfo& e) {
    // The "error" member of a response.
    Json j = Json::object();
    j.set("message", e.message);
    j.set("sqlstate", e.sqlstate);
    j.set("detail", e.detail.empty() ? Json() : Json(e.detail));
    j.set("hint", e.hint.empty() ? Json() : Json(e.hint));
    if (!e.context.empty()) j.set("context", e.context);
    return j;
}

namespace {

Json optional_int(const std::optional<int64_t>& v) {
    return v ? Json(static_cast<long long>(*v)) : Json();
}

}  // namespace

Json run(const Operation& op, Json request, const std::function<void(Context&)>& body) {
    // Record, run in a subtransaction, record the outcome, answer.
    pg::Spi spi;
    catalog::Store store(spi);
    // A queued run was marked running, and committed, by the job worker that runs it; any other
    // run is inserted once it has ended (Store::insert_run).
    int64_t run_id = op.queued_run_id.value_or(0);
    int64_t started_at = pg::to_timestamptz(pg::now());

    Context ctx(spi, store, std::move(request));
    ctx.view = op.raw_view;
    ctx.queued_run_id = op.queued_run_id;
    ctx.caller_search_path = pg::session_search_path();
    auto started = std::chrono::steady_clock::now();
    pg::StatementTimeoutScope::reset_fired();
    std::optional<ErrorInfo> failure = pg::in_subtransaction([&] { body(ctx); });
    // A cancel or the session's statement_timeout ends the statement, as in plain SQL; the
    // subtransaction has rolled the body back, and the caller's transaction is aborted with it.
    if (failure && pg::is_cancel(*failure)) throw Error(*failure);
    double duration_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    duration_ms = static_cast<double>(static_cast<int64_t>(duration_ms * 1000)) / 1000.0;

    Json response = ctx.response;
    response.set("sql", Json::string_array(ctx.statements()));
    response.set("row_count_before", optional_int(ctx.row_count_before));
    response.set("row_count_after", optional_int(ctx.row_count_after));
    response.set("duration_ms", duration_ms);

    if (op.recorded_by_body && !failure && ctx.answer_run_id) {
        // The body's run (e.g. a queued run) is the record of this call.
        Json out = Json::object();
        out.set("status", ctx.status);
        out.set("operation", op.name);
        out.set("view", ctx.view);
        out.set("run_id", static_cast<long long>(*ctx.answer_run_id));
        if (ctx.coalesced) out.set("coalesced", true);
        out.set("request", ctx.request);
        out.set("response", response);
        return out;
    }
    catalog::RunOutcome outcome;
    outcome.id = run_id;
    outcome.operation = op.name;
    outcome.trigger = op.trigger;
    outcome.started_at = started_at;
    outcome.view = ctx.view;
    // A call refused before its rights were checked stays the caller's own record.
    if (!ctx.rights_checked) {
        ctx.definition_id.reset();
        ctx.owner.clear();
    }
    outcome.definition_id = ctx.definition_id;
    outcome.strategy = ctx.strategy;
    outcome.status = failure ? "failed" : (ctx.status == "skipped" ? "skipped" : "success");
    outcome.duration_ms = duration_ms;
    outcome.row_count_before = ctx.row_count_before;
    outcome.row_count_after = ctx.row_count_after;
    if (failure) outcome.error = error_json(*failure);
    outcome.owner = ctx.owner;
    outcome.meta.set("request", ctx.request);
    outcome.meta.set("response", response);
    if (op.counts_as_refresh && ctx.definition_id && outcome.status != "skipped")
        // A call refused for lack of privileges says nothing about the view's health.
        if (!failure || failure->sqlstate != sqlstate::insufficient_privilege)
            outcome.health =
                catalog::RunOutcome::Health{*ctx.definition_id, !failure, ctx.watch_seen};
    if (run_id == 0)
        run_id = store.insert_run(outcome);
    else
        store.finish_run(outcome);

    Json out = Json::object();
    out.set("status", failure ? "error" : ctx.status);
    out.set("operation", op.name);
    out.set("view", ctx.view);
    out.set("run_id", static_cast<long long>(run_id));
    out.set("request", ctx.request);
    out.set("response", response);
    if (failure) out.set("error", error_json(*failure));
    return out;
}

}  // namespace mv::ops
