// Incremental refresh, the catalog side: which queries can be maintained incrementally (the
// supported class of SPEC §5b, with a reason naming the query part for everything else), the
// view's key, the base tables and how their changes map to view rows, and the SQL an incremental
// refresh runs. The analysis works on the query PostgreSQL stored for the view, rewritten (plain
// views expanded), so every relation is the OID it was bound to, never a name read again.
//
// How a refresh finds the view rows to recompute (the "affected keys"): for every occurrence of a
// changed table T in the query (a self-join has several), the query's FROM and WHERE are
// evaluated with that occurrence replaced by T's changed rows (old and new versions), every other
// changed table by its current rows plus its deleted old rows, and a LEFT JOIN that has the
// occurrence on its nullable side made an inner join; the key columns are projected from that,
// before any grouping. The union over occurrences and UNION ALL branches contains the key of
// every view row that a full refresh would change (the inputs only grow, and the query without
// its grouping is monotone in them); it may contain more, never less.
#pragma once

#include "boundary/spi.hpp"

namespace mv::catalog {

// A view column of the key an incremental refresh recomputes rows by.
struct KeyColumn {
    std::string name;
    int attno = 0;
    Oid type = InvalidOid;
    Oid array_type = InvalidOid;
    std::string type_sql;  // format_type, schema-qualified
    std::string eq_sql;    // OPERATOR(schema.=) of the type's default equality
};

// A base table the view reads, directly, through plain views or as a partitioned or inheritance
// parent. capture: it and every partition or child a change can be written to; each carries
// the capture triggers.
struct IncSource {
    Oid relid = InvalidOid;
    std::string quoted;
    char relkind = 0;
    int occurrences = 0;
    std::vector<Oid> capture;
    std::string maps;  // how a change in it maps to view rows, for explain
};

// One occurrence of a base table in the view's query, in the order the analysis walks it: a
// self-join has one per side.
struct IncOccurrence {
    int branch = 0;   // the UNION ALL branch (0 without UNION ALL)
    int ordinal = 0;  // within the branch
    size_t source = 0;
};

struct IncAnalysis {
    std::vector<std::string> reasons;        // empty: the query is in the supported class
    std::vector<KeyColumn> key;              // the unique index's columns
    std::string key_index;                   // its name, "" when the view has none
    std::vector<std::string> suggested_key;  // derived from the query (GROUP BY, DISTINCT, PKs)
    std::vector<IncSource> sources;
    std::vector<IncOccurrence> occurrences;
    int branches = 1;
    uint64_t fingerprint = 0;    // of the rewritten query: part of the capture's shape
    std::vector<Oid> functions;  // every function it calls: a redefinition changes the shape
    bool possible() const { return reasons.empty(); }

    // PostgreSQL's rewritten query (palloc'd in the transaction's memory): the derivation's input.
    void* query = nullptr;
};

// Analyses the materialized view relid (locked by the caller) for incremental refresh.
IncAnalysis analyze_incremental(pg::Spi& spi, Oid relid);
// The same for a query that is not a view yet (explain(sql)), parsed and analysed as the caller
// under its search_path. It has no key yet: suggested_key says which one it would take.
IncAnalysis analyze_incremental_sql(pg::Spi& spi, const std::string& sql);

// The statement that derives the affected keys when the sources flagged in `changed` have
// changes. Parameters: for source i (0-based), $(2i+1) its changed rows, old and new, and $(2i+2)
// its old rows only, each a jsonb array of row objects. One row: the number of distinct keys,
// then for each key column an array of its non-null values and whether a null was seen.
// rows[i]: source i's changed rows (old and new), which choose the shape of its terms.
std::string derive_keys_sql(const IncAnalysis& a, const std::vector<bool>& changed,
                            const std::vector<int64_t>& rows);

// The view's rows for the affected keys, recomputed from its query (new) and as the view has
// them, with their ctid first (old). Parameters: for key column j (0-based), $(2j+1) the values
// (an array of the column's type) and $(2j+2) whether null keys are affected.
std::string recompute_sql(const IncAnalysis& a, const std::string& view_query);
std::string current_rows_sql(const IncAnalysis& a, const std::string& view_quoted);

}  // namespace mv::catalog
