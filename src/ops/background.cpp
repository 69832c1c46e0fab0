// The background functions: enqueue (a run the worker starts after the caller commits), schedule
// and unschedule (interval or cron), and wait (for a run to end). They only record intent; the
// scheduler of this database does the work.
#include "ops/common.hpp"

#include "boundary/scopes.hpp"
#include "core/schedule.hpp"
#include "module.hpp"
#include "worker/shmem.hpp"

namespace mv::ops {

namespace {

catalog::Definition require_definition(Context& ctx, const catalog::RelationInfo& rel) {
    // The view's definition; 42704 with a hint to adopt it otherwise.
    auto def = definition_of(ctx, rel);
    if (!def)
        throw Error(sqlstate::undefined_object,
                    fmt::format("{} is not managed by matviews", rel.quoted))
            .hint(fmt::format("Use matviews.adopt({}) to manage it first.",
                              pg::quote_literal(rel.quoted)));
    return *def;
}

void schedule_body(Context& ctx, const OptText& name, const OptText& schedule) {
    // Validate, then store the schedule text; the scheduler computes the due times.
    QualifiedName q = require_name(name);
    if (!schedule)
        throw Error(sqlstate::null_value_not_allowed, "schedule must not be null")
            .hint(kScheduleHint);
    Schedule parsed = parse_schedule(*schedule);
    catalog::RelationInfo rel = catalog::require_matview(q);
    ctx.view = rel.quoted;
    catalog::Definition def = require_definition(ctx, rel);
    catalog::require_owner(rel);
    if (!ctx.lock_view()) return;
    def.schedule = parsed.to_string();
    def.owner = rel.owner_name;
    ctx.store.update(def);
    ctx.response.set("schedule", parsed.to_string());
    ctx.response.set("kind", parsed.is_interval() ? "interval" : "cron");
    if (parsed.is_cron())
        ctx.response.set("timezone", settings.timezone ? settings.timezone : "UTC");
    warn_if_no_worker(ctx);
}

catalog::Definition definition_of_missing_view(Context& ctx, const QualifiedName& q) {
    // The definition of a view that no longer exists (dropped behind matviews' back), for its
    // owner; 42P01 as for any missing view when there is none.
    auto def = ctx.store.find(q);
    if (!def)
        throw Error(sqlstate::undefined_table,
                    fmt::format("materialized view {} does not exist",
                                q.schema ? pg::quote_qualified(*q.schema, q.name)
                                         : pg::quote_ident(q.name)))
            .hint("Check the name and search_path.");
    ctx.view = pg::quote_qualified(def->schema, def->name);
    ctx.definition_id = def->id;
    ctx.owner = def->owner;
    if (!pg::has_privs_of(def->owner))
        throw Error(sqlstate::insufficient_privilege,
                    fmt::format("must be owner of the definition of {}", ctx.view))
            .hint(fmt::format("Run this as {} or as a member of that role.",
                              pg::quote_ident(def->owner)));
    return *def;
}

void unschedule_body(Context& ctx, const OptText& name) {
    // Clears the schedule; also for a managed view that was dropped, so its schedule can stop.
    QualifiedName q = require_name(name);
    catalog::Definition def;
    if (catalog::find_relation(q)) {
        catalog::RelationInfo rel = catalog::require_matview(q);
        ctx.view = rel.quoted;
        def = require_definition(ctx, rel);
        catalog::require_owner(rel);
    } else {
        def = definition_of_missing_view(ctx, q);
        ctx.response.set("view_exists", false);
    }
    if (!ctx.lock_view()) return;
    if (!def.schedule) {
        ctx.skip("not scheduled");
        return;
    }
    ctx.response.set("previous_schedule", *def.schedule);
    def.schedule.reset();
    ctx.store.update(def);
}

}  // namespace

Json schedule(const OptText& name, const OptText& schedule) {
    // schedule: one recorded operation.
    Operation op{"schedule", raw_name(name)};
    Json request = Json::object();
    request.set("schedule", schedule ? Json(*schedule) : Json());
    return run(op, request, [&](Context& ctx) { schedule_body(ctx, name, schedule); });
}

Json unschedule(const OptText& name) {
    // unschedule: one recorded operation.
    Operation op{"unschedule", raw_name(name)};
    return run(op, Json::object(), [&](Context& ctx) { unschedule_body(ctx, name); });
}

Json enqueue(const EnqueueArgs& a) {
    // Checks the request like the operation itself would, then inserts a queued run that the
    // scheduler starts after this transaction commits. A refused request is recorded as a
    // failed 'enqueue' run.
    Json request = Json::object();
    request.set("operation", a.operation);
    request.set("strategy", a.strategy ? Json(*a.strategy) : Json());
    Operation op{"enqueue", raw_name(a.name)};
    op.recorded_by_body = true;
    return run(op, request, [&](Context& ctx) {
        QualifiedName q = require_name(a.name);
        if (a.operation != "refresh" && a.operation != "swap")
            throw Error(sqlstate::invalid_parameter_value,
                        fmt::format("cannot enqueue operation \"{}\"", a.operation))
                .hint("Enqueue 'refresh' (with an optional strategy) or 'swap'.");
        if (a.strategy) check_strategy(*a.strategy, "strategy");
        catalog::RelationInfo rel = catalog::require_matview(q);
        ctx.view = rel.quoted;
        ctx.request.set(
            "run_at",
            ctx.spi.scalar("SELECT $1::pg_catalog.text", {pg::Param::timestamptz(a.run_at)})
                .as_string());
        auto def = definition_of(ctx, rel);
        catalog::require_owner(rel);
        ctx.strategy =
            a.strategy ? a.strategy
                       : (def ? std::optional<std::string>(def->refresh_strategy) : std::nullopt);
        ctx.answer_run_id = ctx.store.enqueue_run(
            rel.quoted, def ? std::optional<int64_t>(def->id) : std::nullopt, a.operation,
            a.operation == "swap" ? std::optional<std::string>("swap") : a.strategy, a.run_at,
            rel.owner_name, ctx.request);
        warn_if_no_worker(ctx);
        ctx.status = "queued";
    });
}

Json wait(int64_t run_id, int64_t timeout_ms) {
    // Polls the run in fresh snapshots (READ COMMITTED) until it ends or the timeout passes.
    pg::Spi spi;
    auto isolation =
        spi.scalar("SELECT pg_catalog.current_setting('transaction_isolation')").as_string();
    if (isolation != "read committed")
        throw Error("25001", "matviews.wait needs a READ COMMITTED transaction")
            .detail(fmt::format("This transaction is {}: it would never see the run change.",
                                isolation))
            .hint("Call matviews.wait outside that transaction, or in READ COMMITTED.");
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms));
    for (;;) {
        auto r = spi.exec(
            "SELECT status, view, operation, strategy, trigger, meta, error, duration_ms FROM "
            "matviews.runs "
            "WHERE id OPERATOR(pg_catalog.=) $1",
            {pg::Param::int8(run_id)});
        if (r.empty())
            throw Error(sqlstate::undefined_object, fmt::format("run {} does not exist", run_id))
                .hint(
                    "Pass a run_id from matviews.enqueue() or matviews.runs (only runs you may see "
                    "count).");
        const auto& row = r.first();
        std::string status = row[0].as_string();
        bool ended = status != "queued" && status != "running";
        bool timed_out = !ended && std::chrono::steady_clock::now() >= deadline;
        if (ended || timed_out) {
            Json out = Json::object();
            out.set("status", status);
            out.set("operation", row[2].as_string());
            out.set("view", row[1].as_string());
            out.set("run_id", static_cast<long long>(run_id));
            out.set("strategy", row[3].to_json());
            out.set("trigger", row[4].as_string());
            out.set("timed_out", timed_out);
            const Json* resp = row[5].as_json().find("response");
            out.set("response", resp ? *resp : Json::object());
            if (!row[6].is_null()) out.set("error", row[6].as_json());
            return out;
        }
        pg::sleep_ms(10);
    }
}

}  // namespace mv::ops
