// The SPI session: a scoped SPI connection, statements with bound parameters, and results
// converted to C++ values. Every SPI call goes through pg::call, so a PostgreSQL error arrives
// as PgError and the connection is finished when the session object goes out of scope.
// Every statement runs with search_path pinned to `pg_catalog, pg_temp` (kPinnedSearchPath),
// whatever process or role runs it, so no schema a role can create in ever resolves a name,
// operator or function of matviews' own SQL. Only a view owner's code (its query, run by CREATE
// MATERIALIZED VIEW or REFRESH) runs under another search_path, and only through
// exec_owner_code, which names it.
#pragma once

#include "boundary/guard.hpp"
#include "core/json.hpp"

namespace mv::pg {

// One bound parameter: a PostgreSQL type and a Datum allocated in the current memory context.
struct Param {
    Oid type = TEXTOID;
    Datum value = 0;
    bool is_null = true;

    static Param text(std::string_view s);
    static Param opt_text(const std::optional<std::string>& s);
    static Param int8(int64_t v);
    static Param opt_int8(const std::optional<int64_t>& v);
    static Param int4(int32_t v);
    static Param float8(double v);
    static Param boolean(bool v);
    static Param oid(Oid v);
    static Param timestamptz(int64_t ts);
    static Param jsonb(const Json& j);
    static Param text_array(const std::vector<std::string>& items);
    static Param oid_array(const std::vector<Oid>& items);
    static Param int4_array(const std::vector<int32_t>& items);
    static Param null(Oid type);
};

// One result cell as a C++ value. Integers (int2/4/8, oid) are int64, floats double, jsonb Json,
// text[] a vector of strings, everything else its text output.
class Value {
  public:
    Value() = default;
    template <typename T>
    explicit Value(T v) : v_(std::move(v)) {}

    bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
    bool as_bool() const;
    int64_t as_int() const;
    double as_double() const;
    const std::string& as_string() const;
    const Json& as_json() const;
    // A text[] (or name[]) value as its elements; a null element becomes "".
    const std::vector<std::string>& as_text_array() const;
    // Text of any non-null value; nullopt for null.
    std::optional<std::string> text() const;
    // The value as JSON: null, bool, number, string or the jsonb document itself.
    Json to_json() const;

  private:
    // A typed read that found another type: 40001 for a null (a race), XX000 otherwise.
    [[noreturn]] void null_read(const char* wanted) const;
    std::variant<std::monostate, bool, int64_t, double, std::string, Json, std::vector<std::string>>
        v_;
};

class Row {
  public:
    Row(std::shared_ptr<const std::vector<std::string>> columns, std::vector<Value> cells)
        : columns_(std::move(columns)), cells_(std::move(cells)) {}
    const Value& operator[](size_t i) const { return cells_.at(i); }
    const Value& operator[](std::string_view column) const;
    size_t size() const { return cells_.size(); }

  private:
    std::shared_ptr<const std::vector<std::string>> columns_;
    std::vector<Value> cells_;
};

struct Result {
    std::shared_ptr<const std::vector<std::string>> columns;
    std::vector<Row> rows;
    uint64_t processed = 0;

    bool empty() const { return rows.empty(); }
    const Row& first() const { return rows.at(0); }
};

// Result rows kept as PostgreSQL tuples, in a memory context of their own that lives as long as
// the object: values handed from one statement to the next without converting them (the
// incremental refresh's changed rows, keys and recomputed rows).
class KeptRows {
  public:
    KeptRows();
    ~KeptRows();
    KeptRows(const KeptRows&) = delete;
    KeptRows& operator=(const KeptRows&) = delete;
    KeptRows(KeptRows&& other) noexcept;

    size_t size() const { return tuples_.size(); }
    int columns() const;
    // Cell (row, col), 0-based, as a parameter of its own type (null when null).
    Param param(size_t row, int col) const;
    bool is_null(size_t row, int col) const;
    int64_t as_int(size_t row, int col) const;  // int2/4/8 or oid
    bool as_bool(size_t row, int col) const;

    // For boundary code that works on the tuples themselves (delta.cpp).
    HeapTuple tuple(size_t row) const { return static_cast<HeapTuple>(tuples_[row]); }
    TupleDesc desc() const { return static_cast<TupleDesc>(desc_); }

  private:
    friend class Spi;
    MemoryContext context_ = nullptr;
    void* desc_ = nullptr;
    std::vector<void*> tuples_;
};

// For its lifetime, every statement of every Spi runs in one snapshot, taken (the latest) when
// the scope starts: an incremental refresh reads the change log, the tables and the view as of
// one moment. Statements still see this transaction's own earlier changes.
class SnapshotScope {
  public:
    SnapshotScope();
    ~SnapshotScope();
    SnapshotScope(const SnapshotScope&) = delete;
    SnapshotScope& operator=(const SnapshotScope&) = delete;

  private:
    void* snapshot_;
    void* previous_;
};

// A scoped SPI connection.
class Spi {
  public:
    Spi();
    ~Spi();
    Spi(const Spi&) = delete;
    Spi& operator=(const Spi&) = delete;

    // Runs one statement with bound parameters ($1, $2, ...) and returns its rows. Statements
    // run read-write, so each sees what the previous ones did.
    Result exec(std::string_view sql, const std::vector<Param>& params = {});
    // Runs a statement that executes a view owner's code (CREATE MATERIALIZED VIEW ... AS, REFRESH)
    // under search_path, or under the session's own when search_path is nullopt.
    void exec_owner_code(std::string_view sql, const std::optional<std::string>& search_path);
    // The first column of the first row, or a null Value when there is no row.
    Value scalar(std::string_view sql, const std::vector<Param>& params = {});
    // Runs one statement (pinned search_path) and keeps its rows as tuples.
    KeptRows exec_kept(std::string_view sql, const std::vector<Param>& params = {});

  private:
    Result run(std::string_view sql, const std::vector<Param>& params,
               const std::optional<std::string>& search_path, KeptRows* keep = nullptr);
    bool connected_ = false;
};

// The search_path of every statement matviews runs itself.
inline constexpr const char* kPinnedSearchPath = "pg_catalog, pg_temp";

}  // namespace mv::pg
