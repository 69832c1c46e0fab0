// The background functions: enqueue (a run the worker starts after the caller commits), schedule
// and unschedule (interval or cron), and wait (for a run to end). They only record intent; the
// scheduler of this database does the work.
#include "ops/common.hpp"

#include "boundary/scopes.hpp"
#include "core/schedule.hpp"
#include "module.hpp"
#include "boundary/args.hpp"
#include "boundary/subxact.hpp"
#include "ops/pipeline.hpp"
#include "worker/shmem.hpp"

namespace mv::ops {

namespace {

[[noreturn]] void throw_unmanaged(const std::string& view) {
    // 42704 with a hint to adopt it.
    throw Error(sqlstate::undefined_object, fmt::format("{} is not managed by matviews", view))
        .hint(fmt::format("Use matviews.adopt({}) to manage it first.", pg::quote_literal(view)));
}

constexpr const char* kMinIntervalHint =
    "Pass an interval such as '1 second', or '0' to refresh as soon as possible.";

// The pipeline for a call that also acts on a kept definition whose view is gone (unschedule,
// unwatch): 42P01 when there is neither, 42704 when the view is not managed.
std::optional<Target> resolve_managed(Context& ctx, const OptText& name) {
    auto t = resolve_view(ctx, name, std::nullopt, Resolve{true, true});
    if (!t) return t;
    if (!t->rel && !t->def)
        throw Error(sqlstate::undefined_table,
                    fmt::format("materialized view {} does not exist", ctx.view))
            .hint("Check the name and search_path.");
    if (!t->def) throw_unmanaged(ctx.view);
    return t;
}

void schedule_body(Context& ctx, const OptText& name, const OptText& schedule) {
    // Validate, then the pipeline, then store the schedule text; the scheduler computes the due
    // times.
    require_name(name);
    if (!schedule)
        throw Error(sqlstate::null_value_not_allowed, "schedule must not be null")
            .hint(kScheduleHint);
    Schedule parsed = parse_schedule(*schedule);
    auto t = resolve_view(ctx, name, std::nullopt);
    if (!t) return;
    if (!t->def) throw_unmanaged(ctx.view);
    catalog::Definition def = *t->def;
    def.schedule = parsed.to_string();
    def.owner = t->rel->owner_name;
    ctx.store.update(def);
    ctx.response.set("schedule", parsed.to_string());
    ctx.response.set("kind", parsed.is_interval() ? "interval" : "cron");
    if (parsed.is_cron())
        ctx.response.set("timezone", settings.timezone ? settings.timezone : "UTC");
    warn_if_no_worker(ctx);
}

void unschedule_body(Context& ctx, const OptText& name) {
    // Clears the schedule; also of a kept definition whose view is gone.
    auto t = resolve_managed(ctx, name);
    if (!t) return;
    if (!t->rel) ctx.response.set("view_exists", false);
    catalog::Definition def = *t->def;
    if (!def.schedule) {
        ctx.skip("not scheduled");
        return;
    }
    ctx.response.set("previous_schedule", *def.schedule);
    def.schedule.reset();
    ctx.store.update(def);
}

void watch_body(Context& ctx, const OptText& name, const OptText& min_interval) {
    // Validate, then the pipeline; then the sources, their triggers (as the owner) and the
    // watch, which starts stale so the view is refreshed once.
    require_name(name);
    if (!min_interval)
        throw Error(sqlstate::null_value_not_allowed, "min_interval must not be null")
            .hint(kMinIntervalHint);
    int64_t us = 0;
    if (auto bad = pg::in_subtransaction([&] { us = ctx.store.interval_us(*min_interval); })) {
        if (pg::is_cancel(*bad)) throw Error(*bad);
        throw Error(sqlstate::invalid_parameter_value,
                    fmt::format("invalid min_interval \"{}\"", *min_interval))
            .detail(bad->message)
            .hint(kMinIntervalHint);
    }
    if (us < 0)
        throw Error(sqlstate::invalid_parameter_value,
                    fmt::format("min_interval must not be negative: \"{}\"", *min_interval))
            .hint(kMinIntervalHint);
    auto t = resolve_view(ctx, name, std::nullopt);
    if (!t) return;
    if (!t->def) throw_unmanaged(ctx.view);
    const catalog::RelationInfo& rel = *t->rel;
    if (t->def->source)
        throw Error(sqlstate::feature_not_supported,
                    fmt::format("cannot watch {}: its rows come from another database", ctx.view))
            .detail(fmt::format("{} reads source \"{}\"; changes there fire no trigger in this "
                                "database.",
                                ctx.view, *t->def->source))
            .hint(fmt::format("Refresh it on a schedule instead: matviews.schedule({}, "
                              "'5 minutes').",
                              pg::quote_literal(ctx.view)));
    auto sources = ctx.store.watch_sources(rel.oid);
    int created = ctx.store.install_watch_triggers(sources, rel.owner, rel.owner_name, true);
    std::vector<Oid> relids;
    std::vector<std::string> names;
    for (const auto& s : sources) {
        relids.push_back(s.relid);
        names.push_back(s.quoted);
    }
    if (t->def->watch_min_interval)
        ctx.response.set("previous_min_interval", *t->def->watch_min_interval);
    ctx.store.set_watch(t->def->id, *min_interval, relids);
    ctx.response.set("min_interval", *min_interval);
    ctx.response.set("sources", Json::string_array(names));
    ctx.response.set("triggers_created", created);
    warn_if_no_worker(ctx);
}

void unwatch_body(Context& ctx, const OptText& name) {
    // Clears the watch; also of a kept definition whose view is gone.
    auto t = resolve_managed(ctx, name);
    if (!t) return;
    if (!t->def->watch_min_interval) {
        ctx.skip("not watched");
        return;
    }
    ctx.response.set("previous_min_interval", *t->def->watch_min_interval);
    // The triggers no watch needs any more are dropped by the worker, never in this
    // transaction (DROP TRIGGER needs ACCESS EXCLUSIVE on the table, which writers would wait
    // for); until then they only note changes nobody reads.
    ctx.store.set_watch(t->def->id, std::nullopt, {});
}

}  // namespace

Json watch(const OptText& name, const OptText& min_interval) {
    // watch: one recorded operation.
    Operation op{"watch", raw_name(name)};
    Json request = Json::object();
    request.set("min_interval", min_interval ? Json(*min_interval) : Json());
    return run(op, request, [&](Context& ctx) { watch_body(ctx, name, min_interval); });
}

Json unwatch(const OptText& name) {
    // unwatch: one recorded operation.
    Operation op{"unwatch", raw_name(name)};
    return run(op, Json::object(), [&](Context& ctx) { unwatch_body(ctx, name); });
}

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
        require_name(a.name);
        if (a.operation != "refresh" && a.operation != "swap")
            throw Error(sqlstate::invalid_parameter_value,
                        fmt::format("cannot enqueue operation \"{}\"", a.operation))
                .hint("Enqueue 'refresh' (with an optional strategy) or 'swap'.");
        if (a.strategy) check_strategy(*a.strategy, "strategy");
        if (!pg::timestamp_is_finite(a.run_at))
            throw Error(sqlstate::datetime_field_overflow, "run_at must be a finite time")
                .hint(
                    "Pass a time such as now() + interval '5 minutes'; infinity and -infinity "
                    "are not times a run can start at.");
        // Only a request is recorded: no per-view lock, which would make the view's other
        // operations skip until this transaction ends. The run is bound to the relation's OID;
        // the job checks the relation and its owner again when it starts.
        auto t = resolve_view(ctx, a.name, std::nullopt, Resolve{false, false});
        if (!t) return;
        const catalog::RelationInfo& rel = *t->rel;
        const auto& def = t->def;
        ctx.request.set("run_at", pg::timestamptz_text(a.run_at));
        ctx.strategy =
            a.strategy ? a.strategy
                       : (def ? std::optional<std::string>(def->refresh_strategy) : std::nullopt);
        auto queued = ctx.store.enqueue_run(
            rel.quoted, rel.oid, def ? std::optional<int64_t>(def->id) : std::nullopt, a.operation,
            a.operation == "swap" ? std::optional<std::string>("swap") : a.strategy, a.run_at,
            rel.owner_name, ctx.request);
        ctx.answer_run_id = queued.run_id;
        ctx.coalesced = queued.coalesced;
        warn_if_no_worker(ctx);
        ctx.status = "queued";
    });
}

namespace {

[[noreturn]] void throw_no_run(int64_t run_id) {
    throw Error(sqlstate::undefined_object, fmt::format("run {} does not exist", run_id))
        .hint(
            "Pass a run_id from matviews.enqueue() or matviews.runs (only runs you may see "
            "count).");
}

void require_read_committed(const char* function) {
    if (pg::transaction_isolation() != "read committed")
        throw Error("25001", fmt::format("{} needs a READ COMMITTED transaction", function))
            .detail(fmt::format("This transaction is {}: it would never see the run change.",
                                pg::transaction_isolation()))
            .hint(fmt::format("Call {} outside that transaction, or in READ COMMITTED.", function));
}

bool has_ended(const std::string& status) {
    return status != "queued" && status != "running";
}

// Polls the run's status, each time in a fresh snapshot and a fresh memory context, until it has
// ended or the deadline passes; returns whether it ended.
bool poll_until_ended(int64_t run_id, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        std::optional<std::string> status;
        {
            pg::MemoryScope memory;
            pg::Spi spi;
            status = catalog::Store(spi).run_status(run_id);
        }
        if (!status) throw_no_run(run_id);
        if (has_ended(*status)) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        pg::sleep_ms(10);
    }
}

}  // namespace

Json cancel(int64_t run_id) {
    // Check rights on the run's owner, then cancel a queued run in this transaction, or send the
    // job running it a query cancel and wait for the job to roll back and record it.
    std::optional<catalog::Store::RunControl> run;
    {
        pg::Spi spi;
        run = catalog::Store(spi).run_control(run_id);
    }
    if (!run) throw_no_run(run_id);
    if (!pg::has_privs_of(run->owner))
        throw Error(sqlstate::insufficient_privilege,
                    fmt::format("permission denied to cancel run {}", run_id))
            .detail(
                fmt::format("Run {} of {} belongs to role \"{}\".", run_id, run->view, run->owner))
            .hint(fmt::format("Cancel it as {}, a member of that role, or a superuser.",
                              pg::quote_ident(run->owner)));
    Json out = Json::object();
    out.set("run_id", static_cast<long long>(run_id));
    out.set("view", run->view);
    if (run->status == "queued") {
        pg::Spi spi;
        if (catalog::Store(spi).cancel_queued_run(run_id)) {
            out.set("status", "cancelled");
            out.set("was", "queued");
            return out;
        }
        run = catalog::Store(spi).run_control(run_id);  // claimed meanwhile
        if (!run) throw_no_run(run_id);
    }
    if (run->status == "running") {
        require_read_committed("matviews.cancel");
        bool signalled = false;
        {
            pg::Spi spi;
            signalled = run->pid && catalog::Store(spi).is_job_of_run(int(*run->pid), run_id) &&
                        pg::send_query_cancel(int(*run->pid));
        }
        // Not signalled: the job has just ended, or is between its claim and its work; either
        // way the wait below sees the outcome.
        bool ended = poll_until_ended(
            run_id, std::chrono::steady_clock::now() + std::chrono::seconds(signalled ? 30 : 5));
        std::string status;
        {
            pg::Spi spi;
            status = catalog::Store(spi).run_status(run_id).value_or("");
        }
        out.set("was", "running");
        if (!ended) {
            out.set("status", "running");
            out.set("reason", "cancel requested");
            return out;
        }
        if (status == "cancelled") {
            out.set("status", "cancelled");
            return out;
        }
        run->status = status;
    }
    out.set("status", "skipped");
    out.set("reason", "already ended");
    out.set("run_status", run->status);
    return out;
}

Json wait(int64_t run_id, int64_t timeout_ms) {
    // Polls the run's status (READ COMMITTED) until it ends or the timeout passes, then reads
    // the whole run once.
    require_read_committed("matviews.wait");
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms));
    (void)poll_until_ended(run_id, deadline);
    std::optional<catalog::Store::RunState> run;
    {
        pg::Spi spi;
        run = catalog::Store(spi).run_state(run_id);
    }
    if (!run) throw_no_run(run_id);
    Json out = Json::object();
    out.set("status", run->status);
    out.set("operation", run->operation);
    out.set("view", run->view);
    out.set("run_id", static_cast<long long>(run_id));
    out.set("strategy", run->strategy ? Json(*run->strategy) : Json());
    out.set("trigger", run->trigger);
    out.set("timed_out", !has_ended(run->status));
    out.set("response", run->response);
    if (run->error) out.set("error", *run->error);
    return out;
}

}  // namespace mv::ops
