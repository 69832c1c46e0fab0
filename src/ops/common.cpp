// Helpers shared by the operations (see common.hpp).
#include "ops/common.hpp"

#include "boundary/scopes.hpp"

namespace mv::ops {

QualifiedName require_name(const OptText& name) {
    if (!name)
        throw Error(sqlstate::null_value_not_allowed, "the view name must not be null")
            .hint("Pass the view's name, e.g. 'mv_users' or 'reporting.mv_users'.");
    return parse_qualified_name(*name);
}

std::string raw_name(const OptText& name) {
    return name ? *name : std::string("(null)");
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
    // Deterministic name, so repeating it is harmless.
    check_index_columns(columns);
    std::string index = unique_index_name(rel.name, columns);
    ctx.execute(fmt::format("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})",
                            pg::quote_ident(index), rel.quoted, column_list(columns)));
    return index;
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

}  // namespace mv::ops
