// The single-query check (see query_check.hpp).
#include "catalog/query_check.hpp"

#include "boundary/scopes.hpp"

extern "C" {
#include "nodes/nodeFuncs.h"
#include "nodes/nodes.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
}

namespace mv::catalog {

namespace {

// What the raw-tree walk found; filled by a plain C callback.
struct Findings {
    NodeTag modifying;  // InsertStmt, UpdateStmt, DeleteStmt or MergeStmt; T_Invalid if none
    bool select_into;
};

extern "C" bool matviews_find_forbidden(Node* node, void* context) {
    // raw_expression_tree_walker callback: records data-modifying statements and SELECT INTO.
    if (node == NULL) return false;
    Findings* f = static_cast<Findings*>(context);
    if (IsA(node, InsertStmt) || IsA(node, UpdateStmt) || IsA(node, DeleteStmt) ||
        IsA(node, MergeStmt)) {
        f->modifying = nodeTag(node);
        return true;
    }
    if (IsA(node, SelectStmt) && reinterpret_cast<SelectStmt*>(node)->intoClause != NULL) {
        f->select_into = true;
        return true;
    }
    // PostgreSQL 15 declares the walker as bool (*)(); void (*)(void) converts to and from any.
    auto walker =
        reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)(void)>(matviews_find_forbidden));
    return raw_expression_tree_walker(node, walker, context);
}

const char* statement_kind(NodeTag tag) {
    // A name for the statement kinds users are most likely to pass.
    switch (tag) {
        case T_InsertStmt:
            return "INSERT";
        case T_UpdateStmt:
            return "UPDATE";
        case T_DeleteStmt:
            return "DELETE";
        case T_MergeStmt:
            return "MERGE";
        case T_CreateStmt:
            return "CREATE TABLE";
        case T_ViewStmt:
            return "CREATE VIEW";
        case T_CreateTableAsStmt:
            return "CREATE ... AS";
        case T_DropStmt:
            return "DROP";
        case T_TruncateStmt:
            return "TRUNCATE";
        case T_ExplainStmt:
            return "EXPLAIN";
        case T_TransactionStmt:
            return "a transaction statement";
        case T_VariableSetStmt:
            return "SET";
        default:
            return "a statement that is not a query";
    }
}

constexpr const char* kQueryHint =
    "Pass exactly one query: SELECT ..., WITH ... SELECT ..., VALUES (...) or TABLE name.";

}  // namespace

std::string check_single_query(const std::string& sql) {
    // raw_parser, then checks on the statement list and a walk of the one statement.
    const char* text = sql.c_str();
    List* stmts = pg::call([&] { return raw_parser(text, RAW_PARSE_DEFAULT); });
    int n = stmts ? list_length(stmts) : 0;
    if (n == 0) throw Error(sqlstate::syntax_error, "the query is empty").hint(kQueryHint);
    if (n > 1)
        throw Error(sqlstate::syntax_error,
                    fmt::format("the SQL holds {} statements; a view needs exactly one query", n))
            .hint(kQueryHint);
    RawStmt* raw = linitial_node(RawStmt, stmts);
    NodeTag tag = nodeTag(raw->stmt);
    if (tag != T_SelectStmt)
        throw Error(sqlstate::feature_not_supported,
                    fmt::format("the SQL is {}, not a query", statement_kind(tag)))
            .hint(kQueryHint);
    Findings f{T_Invalid, false};
    Node* stmt = raw->stmt;
    pg::call([&] { (void)matviews_find_forbidden(stmt, &f); });
    if (f.select_into)
        throw Error(sqlstate::feature_not_supported, "a view's query cannot use SELECT INTO")
            .hint("Remove the INTO clause; matviews stores the result in the view itself.");
    if (f.modifying != T_Invalid)
        throw Error(sqlstate::feature_not_supported,
                    fmt::format("a view's query cannot contain a data-modifying statement ({})",
                                statement_kind(f.modifying)))
            .hint("Remove INSERT, UPDATE, DELETE and MERGE from the WITH clause.");

    // The statement's own text: from its start, for its length (0 means to the end).
    size_t start = raw->stmt_location > 0 ? static_cast<size_t>(raw->stmt_location) : 0;
    size_t len = raw->stmt_len > 0 ? static_cast<size_t>(raw->stmt_len) : std::string::npos;
    std::string out = sql.substr(start, len);
    auto is_trim = [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';';
    };
    while (!out.empty() && is_trim(out.back())) out.pop_back();
    size_t first = 0;
    while (first < out.size() && is_trim(out[first])) first++;
    return out.substr(first);
}

std::string check_single_query_any_quoting(const std::string& sql) {
    // standard_conforming_strings changes what a '...\...' literal means, and where it ends. The
    // text is checked and parsed both ways, and the two raw parse trees (locations included)
    // must be the same, so the remote server reads the query as checked whatever its setting.
    std::string result;
    std::string trees[2];
    const char* settings[2] = {"off", "on"};
    for (int i = 0; i < 2; i++) {
        pg::GucScope guc;
        guc.set("escape_string_warning", "off");  // the off reading is a test, not the query
        guc.set("standard_conforming_strings", settings[i]);
        result = check_single_query(sql);
        const char* text = sql.c_str();
        const char* tree =
            pg::call([&] { return nodeToString(raw_parser(text, RAW_PARSE_DEFAULT)); });
        trees[i] = tree;
    }
    if (trees[0] != trees[1])
        throw Error(sqlstate::nonstandard_use_of_escape_character,
                    "the remote query means different things with standard_conforming_strings on "
                    "and off")
            .detail(
                "A backslash in a '...' string literal is read as an escape by a server with "
                "standard_conforming_strings off, and as a plain character otherwise; the remote "
                "server may read it either way.")
            .hint(
                "Write such strings as E'...' (escapes always) or with dollar quotes $$...$$ "
                "(never), which every server reads the same way.");
    return result;
}

void check_create_statement(const std::string& statement) {
    // Re-parses the assembled statement: one CreateTableAsStmt for a materialized view.
    const char* text = statement.c_str();
    List* stmts = pg::call([&] { return raw_parser(text, RAW_PARSE_DEFAULT); });
    bool ok = stmts && list_length(stmts) == 1;
    if (ok) {
        Node* s = linitial_node(RawStmt, stmts)->stmt;
        ok = IsA(s, CreateTableAsStmt) &&
             reinterpret_cast<CreateTableAsStmt*>(s)->objtype == OBJECT_MATVIEW;
    }
    if (!ok)
        throw Error(
            sqlstate::internal_error,
            "matviews built a statement that does not parse as one CREATE MATERIALIZED VIEW")
            .detail(statement);
}

}  // namespace mv::catalog
