// Incremental refresh, the operation side (see incremental.hpp). The order inside the view's
// per-view lock: check the query, take ExclusiveLock (readers go on), make sure every table
// captures, take one snapshot, read the changes committed since the last refresh, derive the
// affected keys, recompute those rows, apply the difference, record the snapshot. Anything that
// makes the log untrustworthy ends in a full refresh instead, never in a wrong view.
#include "ops/incremental.hpp"

#include "boundary/args.hpp"
#include "boundary/delta.hpp"
#include "catalog/query_check.hpp"
#include "boundary/scopes.hpp"
#include "boundary/subxact.hpp"
#include "module.hpp"

namespace mv::ops {

namespace {

std::string nearest_strategy(const catalog::IncAnalysis& a) {
    return a.key.empty() ? "swap" : "concurrent";
}

struct CaptureTables {
    std::vector<Oid> tables;         // each table once
    std::vector<Oid> log_relids;     // a (table, source) pair per entry
    std::vector<int32_t> source_of;  // the source of log_relids[i]
};

CaptureTables capture_tables(const catalog::IncAnalysis& a) {
    CaptureTables c;
    for (size_t s = 0; s < a.sources.size(); s++)
        for (Oid t : a.sources[s].capture) {
            c.log_relids.push_back(t);
            c.source_of.push_back(static_cast<int32_t>(s));
            if (std::find(c.tables.begin(), c.tables.end(), t) == c.tables.end())
                c.tables.push_back(t);
        }
    std::sort(c.tables.begin(), c.tables.end());
    return c;
}

void full_refresh(Context& ctx, const catalog::RelationInfo& rel, const catalog::Definition& def,
                  const std::string& reason, Json& inc) {
    // CONCURRENTLY when the view is populated (readers go on), else a plain REFRESH.
    bool concurrently = rel.populated;
    ctx.response.set("fallback", reason);
    ctx.response.set("full_refresh", concurrently ? "concurrent" : "regular");
    ctx.execute_owner_code(fmt::format("REFRESH MATERIALIZED VIEW {}{}",
                                       concurrently ? "CONCURRENTLY " : "", rel.quoted),
                           owner_search_path(def));
    inc.set("keys", Json());
}

}  // namespace

catalog::IncAnalysis require_incremental(Context& ctx, const catalog::RelationInfo& rel,
                                         const std::optional<catalog::Definition>& def) {
    if (def && def->source)
        throw Error(
            sqlstate::feature_not_supported,
            fmt::format("cannot refresh {} incrementally: it reads a remote source", rel.quoted))
            .detail(
                "Its rows come from another database over dblink, where no trigger of this "
                "database captures changes.")
            .hint("Use refresh_strategy => 'concurrent' or 'swap'.");
    catalog::IncAnalysis a = catalog::analyze_incremental(ctx.spi, rel.oid);
    if (!a.possible())
        throw Error(sqlstate::feature_not_supported,
                    fmt::format("cannot refresh {} incrementally", rel.quoted))
            .detail(fmt::format("Not supported: {}.", fmt::join(a.reasons, "; ")))
            .hint(a.key_index.empty() && a.reasons.size() == 1
                      ? unique_index_hint(rel, a.suggested_key.empty()
                                                   ? std::nullopt
                                                   : OptTextList(a.suggested_key))
                      : fmt::format("Use refresh_strategy => '{}'.", nearest_strategy(a)));
    return a;
}

void start_incremental(Context& ctx, const catalog::RelationInfo& rel, int64_t definition_id,
                       const std::optional<catalog::Definition>& def) {
    catalog::IncAnalysis a = require_incremental(ctx, rel, def);
    CaptureTables c = capture_tables(a);
    ctx.store.install_capture_triggers(c.tables, rel.owner, rel.owner_name);
    ctx.store.reset_incremental_state(definition_id, c.tables);
}

void incremental_refresh(Context& ctx, const catalog::RelationInfo& rel,
                         const catalog::Definition& def) {
    if (def.refresh_strategy != "incremental")
        throw Error(sqlstate::feature_not_supported,
                    fmt::format("cannot refresh {} incrementally: its refresh_strategy is '{}'",
                                rel.quoted, def.refresh_strategy))
            .detail(
                "An incremental refresh reads the changes captured since the previous one; "
                "they are captured only for views whose strategy is incremental.")
            .hint(fmt::format("Run matviews.alter({}, refresh_strategy => 'incremental') first.",
                              pg::quote_literal(rel.quoted)));
    // Its snapshot must be the one the changes are read in: a transaction's own older snapshot
    // (REPEATABLE READ) would make the full refresh of a fallback miss what was read.
    if (pg::transaction_isolation() != "read committed")
        throw Error("25001", "an incremental refresh needs a READ COMMITTED transaction")
            .detail(fmt::format("This transaction is {}.", pg::transaction_isolation()))
            .hint("Refresh outside that transaction, or in READ COMMITTED.");
    catalog::IncAnalysis a = require_incremental(ctx, rel, def);
    pg::lock_relation_for_refresh(rel.oid);
    CaptureTables c = capture_tables(a);
    // The owner's right to put triggers on the tables counts at every refresh, not only when
    // they were put there (another view's may be there already).
    ctx.store.require_trigger_privilege(c.tables, rel.owner, rel.owner_name);

    std::string fallback;
    std::vector<Oid> missing = ctx.store.tables_missing_capture(c.tables, rel.owner);
    if (!missing.empty()) {
        ctx.store.install_capture_triggers(missing, rel.owner, rel.owner_name);
        fallback =
            "capture was missing on a base table (a new partition or child, or a dropped "
            "trigger)";
    }
    std::string shape = ctx.store.capture_shape(rel.oid, c.tables, a.fingerprint, a.functions);
    Json inc = Json::object();
    std::string snapshot;
    {
        pg::SnapshotScope one_snapshot;  // after the lock and the triggers
        snapshot = ctx.store.current_snapshot();
        auto [since, state] = ctx.store.incremental_state(def.id);
        if (fallback.empty()) {
            if (!since)
                fallback = "first refresh";
            else if (!state || *state != shape)
                fallback =
                    "DDL on a base table or a function the query calls, or the view or a table was "
                    "replaced (or restored)";
            else if (!rel.populated)
                fallback = "the view is not populated";
        }
        std::optional<pg::KeptRows> changes, derived;
        if (fallback.empty()) {
            // One jsonb array per source: past a size the log is not worth reading (and past
            // 256 MB it cannot be), and a full refresh is cheaper.
            constexpr int64_t kMaxChangeBytes = 64LL << 20;
            int64_t bytes = ctx.store.pending_change_bytes(c.log_relids, since);
            if (bytes > kMaxChangeBytes)
                fallback = fmt::format("the captured changes are too large ({} MB)", bytes >> 20);
        }
        std::vector<bool> changed(a.sources.size(), false);
        std::vector<int64_t> changed_rows(a.sources.size(), 0);
        std::vector<pg::Param> rows(2 * a.sources.size(), pg::Param::null(JSONBOID));
        int64_t nchanges = 0;
        if (fallback.empty()) {
            changes.emplace(ctx.store.read_changes(c.log_relids, c.source_of, since));
            for (size_t r = 0; r < changes->size(); r++) {
                auto s = static_cast<size_t>(changes->as_int(r, 0));
                if (changes->as_bool(r, 3))
                    fallback = fmt::format("TRUNCATE on {}", a.sources[s].quoted);
                nchanges += changes->as_int(r, 4);
                changed_rows[s] += changes->as_int(r, 4);
                if (changes->is_null(r, 1)) continue;
                changed[s] = true;
                rows[2 * s] = changes->param(r, 1);
                rows[2 * s + 1] = changes->param(r, 2);
            }
            inc.set("changes", static_cast<long long>(nchanges));
        }
        const bool work = fallback.empty() && nchanges > 0;
        if (work) {
            // A logged row that no longer reads as the table's row (a column's type changed and
            // back) cannot be trusted: a full refresh, not a failed one.
            auto unreadable = pg::in_subtransaction([&] {
                pg::GucScope guc;
                guc.set("lc_monetary", "C");  // as the capture wrote money
                derived.emplace(ctx.store.owner_rows(
                    catalog::derive_keys_sql(a, changed, changed_rows), rows, rel.owner));
            });
            if (unreadable) {
                if (pg::is_cancel(*unreadable)) throw Error(*unreadable);
                fallback =
                    fmt::format("the captured changes could not be read: {}", unreadable->message);
            }
        }
        int64_t nkeys = 0;
        if (work && fallback.empty()) {
            nkeys = derived->as_int(0, 0);
            double estimate = static_cast<double>(catalog::estimated_rows(rel.oid).value_or(0));
            // 1 (or more) turns the size fallback off: new keys can outnumber old rows.
            double limit = settings.incremental_max_fraction * std::max(estimate, 1.0);
            if (settings.incremental_max_fraction < 1.0 && static_cast<double>(nkeys) > limit)
                fallback = fmt::format(
                    "the changes affect {} keys, more than matviews.incremental_max_fraction ({}) "
                    "of the view's {} estimated rows",
                    nkeys, settings.incremental_max_fraction, static_cast<int64_t>(estimate));
        }
        pg::DeltaCounts counts;
        if (work && fallback.empty()) {
            std::vector<pg::Param> params;
            std::vector<int> attnos;
            for (size_t j = 0; j < a.key.size(); j++) {
                params.push_back(derived->param(0, static_cast<int>(1 + 2 * j)));
                params.push_back(derived->param(0, static_cast<int>(2 + 2 * j)));
                // No non-null key: the array is null, and ANY(null) matches nothing.
                pg::Param& values = params[params.size() - 2];
                values = values.is_null ? pg::Param::null(a.key[j].array_type) : values;
                values.type = a.key[j].array_type;
                attnos.push_back(a.key[j].attno);
            }
            std::string view_query = catalog::stored_query(ctx.spi, rel.oid);
            pg::KeptRows fresh =
                ctx.store.owner_rows(catalog::recompute_sql(a, view_query), params, rel.owner);
            pg::KeptRows current =
                ctx.store.owner_rows(catalog::current_rows_sql(a, rel.quoted), params, rel.owner);
            pg::RoleScope as_owner(rel.owner, true);
            counts = pg::apply_view_delta(rel.oid, current, fresh, attnos);
        }
        if (fallback.empty()) {
            inc.set("keys", static_cast<long long>(nkeys));
            inc.set("deleted", static_cast<long long>(counts.deleted));
            inc.set("inserted", static_cast<long long>(counts.inserted));
            inc.set("updated", static_cast<long long>(counts.updated));
        }
    }
    // The full refresh runs in its own, later snapshot: every change committed before
    // `snapshot` is in it, and the ones after are read again next time (their keys recomputed
    // to the same rows).
    if (!fallback.empty()) full_refresh(ctx, rel, def, fallback, inc);
    ctx.store.save_incremental_state(def.id, snapshot, shape, c.tables);
    ctx.response.set("strategy", "incremental");
    ctx.response.set("incremental", std::move(inc));
}

namespace {

Json strategy_json(bool possible, const std::vector<std::string>& reasons,
                   const std::string& hint) {
    Json j = Json::object();
    j.set("possible", possible);
    j.set("reasons", Json::string_array(reasons));
    j.set("hint", hint.empty() ? Json() : Json(hint));
    return j;
}

}  // namespace

Json explain(const OptText& name, const OptText& sql) {
    // Read-only: nothing is recorded or locked beyond what reading the query takes.
    if (name.has_value() == sql.has_value())
        throw Error(sqlstate::invalid_parameter_value, "pass exactly one of name and sql")
            .hint(
                "matviews.explain(name => 'schema.view') or matviews.explain(sql => 'SELECT "
                "...').");
    pg::Spi spi;
    catalog::Store store(spi);
    std::optional<catalog::RelationInfo> rel;
    std::optional<catalog::Definition> def;
    catalog::IncAnalysis a;
    std::vector<std::string> remote;
    if (name) {
        rel = catalog::require_matview(require_name(name));
        def = store.find_by_relid(rel->oid);
        if (def && def->source) remote.push_back(fmt::format("remote source {}", *def->source));
        a = catalog::analyze_incremental(spi, rel->oid);
    } else {
        a = catalog::analyze_incremental_sql(spi, catalog::check_single_query(*sql));
    }
    std::string target = rel ? rel->quoted : std::string("<view>");
    std::string create_index = !a.suggested_key.empty()
                                   ? fmt::format("CREATE UNIQUE INDEX ON {} ({})", target,
                                                 fmt::join(
                                                     [&] {
                                                         std::vector<std::string> q;
                                                         for (const auto& c : a.suggested_key)
                                                             q.push_back(pg::quote_ident(c));
                                                         return q;
                                                     }(),
                                                     ", "))
                                   : std::string();
    Json out = Json::object();
    Json strategies = Json::object();
    strategies.set("regular", strategy_json(true, {}, ""));
    std::vector<std::string> conc;
    if (!rel)
        conc.push_back("needs a unique index on the view, which does not exist yet");
    else if (!catalog::has_concurrent_refresh_index(spi, rel->oid))
        conc.push_back(
            "no unique index that REFRESH ... CONCURRENTLY accepts (valid, immediate, "
            "not partial, plain columns)");
    strategies.set(
        "concurrent",
        strategy_json(
            rel && conc.empty(), conc,
            conc.empty() ? ""
            : rel        ? unique_index_hint(
                               *rel, a.suggested_key.empty() ? std::nullopt : OptTextList(a.suggested_key))
            : create_index.empty() ? "create the view with unique_index_columns"
                                   : fmt::format("create the view with unique_index_columns "
                                                 "=> ARRAY[{}]",
                                                 fmt::join(
                                                     [&] {
                                                         std::vector<std::string> q;
                                                         for (const auto& c : a.suggested_key)
                                                             q.push_back(pg::quote_literal(c));
                                                         return q;
                                                     }(),
                                                     ", "))));
    strategies.set("swap", strategy_json(true, {}, ""));
    std::vector<std::string> inc = remote;
    for (const auto& r : a.reasons) inc.push_back(r);
    if (!rel && a.reasons.empty())
        inc.push_back("needs a unique index on the view, which does not exist yet");
    strategies.set("incremental",
                   strategy_json(inc.empty(), inc,
                                 inc.empty() ? ""
                                 : a.reasons.size() == 1 && a.key_index.empty() && rel
                                     ? unique_index_hint(*rel, a.suggested_key.empty()
                                                                   ? std::nullopt
                                                                   : OptTextList(a.suggested_key))
                                     : fmt::format("use refresh_strategy => '{}'",
                                                   conc.empty() ? "concurrent" : "swap")));
    out.set("strategies", std::move(strategies));

    Json key = Json::object();
    std::vector<std::string> cols;
    for (const auto& k : a.key) cols.push_back(k.name);
    key.set("columns", cols.empty() ? Json() : Json::string_array(cols));
    key.set("index", a.key_index.empty() ? Json() : Json(a.key_index));
    key.set("suggested", a.suggested_key.empty() ? Json() : Json::string_array(a.suggested_key));
    key.set("create_index",
            create_index.empty() || !a.key_index.empty() ? Json() : Json(create_index));
    out.set("key", std::move(key));

    Json sources = Json::array();
    for (const auto& s : a.sources) {
        Json j = Json::object();
        j.set("table", s.quoted);
        j.set("kind", s.relkind == 'p' ? "partitioned table" : "table");
        j.set("occurrences", s.occurrences);
        j.set("captured_tables", static_cast<long long>(s.capture.size()));
        j.set("maps", s.maps);
        sources.push(std::move(j));
    }
    out.set("sources", std::move(sources));
    if (rel) out.set("view", rel->quoted);
    return out;
}

}  // namespace mv::ops
