// Helpers shared by the operations (see common.hpp).
#include "ops/common.hpp"

#include "boundary/scopes.hpp"
#include "worker/shmem.hpp"

namespace mv::ops {

QualifiedName require_name(const OptText& name) {
    if (!name)
        throw Error(sqlstate::null_value_not_allowed, "the view name must not be null")
            .hint("Pass the view's name, e.g. 'mv_users' or 'reporting.mv_users'.");
    return parse_qualified_name(*name);
}

QualifiedName require_name(Context& ctx, const OptText& name) {
    // Parses, then shows the parsed form.
    QualifiedName q = require_name(name);
    ctx.view = display_name(q);
    return q;
}

std::string raw_name(const OptText& name) {
    return name ? *name : std::string("(null)");
}

std::string display_name(const QualifiedName& q) {
    return q.schema ? pg::quote_qualified(*q.schema, q.name) : pg::quote_ident(q.name);
}

catalog::RelationInfo require_matview(Context& ctx, const QualifiedName& q) {
    // One lookup; the resolved name is shown even when the relation is of the wrong kind.
    auto rel = catalog::find_relation(q);
    if (rel) ctx.view = rel->quoted;
    return catalog::require_matview(rel, q);
}

void require_definition_owner(const catalog::Definition& def, const std::string& view) {
    // The definition's owner, a member of that role, or a superuser.
    if (!pg::has_privs_of(def.owner))
        throw Error(sqlstate::insufficient_privilege,
                    fmt::format("must be owner of the definition of {}", view))
            .hint(fmt::format("Run this as {} or as a member of that role.",
                              pg::quote_ident(def.owner)));
}

std::optional<std::string> owner_search_path(const std::optional<catalog::Definition>& def) {
    if (def && !def->search_path.empty()) return def->search_path;
    return std::nullopt;
}

void check_index_columns(const std::vector<std::string>& columns) {
    if (columns.empty())
        throw Error(sqlstate::invalid_parameter_value, "unique_index_columns is empty")
            .hint("List the columns that identify a row, e.g. ARRAY['user_id'].");
    for (const auto& c : columns)
        if (c.empty())
            throw Error(sqlstate::invalid_parameter_value,
                        "unique_index_columns holds an empty or null name")
                .hint("List the columns that identify a row, e.g. ARRAY['user_id'].");
}

namespace {
std::string column_list(const std::vector<std::string>& columns) {
    std::string out;
    for (const auto& c : columns) {
        if (!out.empty()) out += ", ";
        out += pg::quote_ident(c);
    }
    return out;
}
}  // namespace

std::string create_unique_index(Context& ctx, const catalog::RelationInfo& rel,
                                const std::vector<std::string>& columns) {
    // Deterministic name; an existing relation of that name is reused only when it is this
    // very index, so a name clash never leaves the view without its unique index.
    check_index_columns(columns);
    std::string index = unique_index_name(rel.name, columns);
    catalog::IndexSlot slot = catalog::index_slot(ctx.spi, rel, index, columns);
    if (slot.same_index) return index;
    if (slot.taken)
        throw Error(
            sqlstate::duplicate_table,
            fmt::format("cannot create the unique index {} on {}: a relation named {} "
                        "already exists",
                        pg::quote_ident(index), rel.quoted, pg::quote_qualified(rel.schema, index)))
            .detail(slot.on_view ? "It is another index of this view."
                                 : "It does not belong to this view.")
            .hint("Rename or drop that relation, or choose other unique_index_columns.");
    ctx.execute(fmt::format("CREATE UNIQUE INDEX {} ON {} ({})", pg::quote_ident(index), rel.quoted,
                            column_list(columns)));
    return index;
}

bool drop_unique_index(Context& ctx, const catalog::RelationInfo& rel,
                       const std::vector<std::string>& columns) {
    // Only an index of this view is dropped.
    std::string index = unique_index_name(rel.name, columns);
    if (!catalog::index_slot(ctx.spi, rel, index, columns).on_view) return false;
    ctx.execute(fmt::format("DROP INDEX {}", pg::quote_qualified(rel.schema, index)));
    return true;
}

std::string unique_index_hint(const catalog::RelationInfo& rel, const OptTextList& columns) {
    // Uses the definition's columns when known.
    if (columns && !columns->empty())
        return fmt::format("Run: CREATE UNIQUE INDEX {} ON {} ({});",
                           pg::quote_ident(unique_index_name(rel.name, *columns)), rel.quoted,
                           column_list(*columns));
    return fmt::format(
        "Run: CREATE UNIQUE INDEX ON {} (<columns that identify a row>); or set them with "
        "matviews.alter({}, unique_index_columns => ARRAY['...']).",
        rel.quoted, pg::quote_literal(rel.quoted));
}

void warn_if_no_worker(Context& ctx) {
    // SPEC §1: without the preloaded worker the request is recorded, with a warning.
    if (worker::preloaded() && worker::launcher_running()) return;
    ctx.response.set("warning",
                     worker::preloaded()
                         ? "no matviews worker is running (the launcher is not up, e.g. on a "
                           "standby); the request "
                           "is recorded and runs once a worker serves this database"
                         : "no matviews worker is running: add matviews to "
                           "shared_preload_libraries and restart; "
                           "the request is recorded and runs once a worker serves this database");
}

}  // namespace mv::ops
