// The SPI session: connect/finish, parameterized execution and conversion of result tuples into
// C++ values, each PostgreSQL call under pg::call.
#include "boundary/spi.hpp"

#include <unordered_map>

#include "boundary/jsonb.hpp"
#include "boundary/scopes.hpp"

extern "C" {
#include "commands/trigger.h"
#include "utils/array.h"
#include "utils/snapmgr.h"
}

namespace mv::pg {

// ---- parameters ---------------------------------------------------------------------------

Param Param::text(std::string_view s) {
    // A text parameter.
    const char* data = s.data();
    int len = static_cast<int>(s.size());
    Param p;
    p.type = TEXTOID;
    p.is_null = false;
    p.value = call([&] { return PointerGetDatum(cstring_to_text_with_len(data, len)); });
    return p;
}

Param Param::opt_text(const std::optional<std::string>& s) {
    // A text parameter that may be null.
    return s ? text(std::string_view(*s)) : null(TEXTOID);
}

Param Param::int8(int64_t v) {
    return Param{INT8OID, Int64GetDatum(v), false};
}
Param Param::int4(int32_t v) {
    return Param{INT4OID, Int32GetDatum(v), false};
}
Param Param::float8(double v) {
    return Param{FLOAT8OID, Float8GetDatum(v), false};
}
Param Param::boolean(bool v) {
    return Param{BOOLOID, BoolGetDatum(v), false};
}
Param Param::oid(Oid v) {
    return Param{OIDOID, ObjectIdGetDatum(v), false};
}
Param Param::opt_int8(const std::optional<int64_t>& v) {
    // An int8 parameter that may be null.
    return v ? int8(*v) : null(INT8OID);
}

namespace {
Param int_array(const std::vector<int64_t>& items, Oid elem, Oid array) {
    // A one-dimensional array of a by-value integer type.
    std::vector<Datum> d;
    for (int64_t v : items)
        d.push_back(elem == INT4OID ? Int32GetDatum(static_cast<int32>(v))
                                    : ObjectIdGetDatum(static_cast<Oid>(v)));
    int n = static_cast<int>(d.size());
    Datum* data = d.data();
    Param p;
    p.type = array;
    p.is_null = false;
    p.value = call(
        [&] { return PointerGetDatum(construct_array(data, n, elem, 4, true, TYPALIGN_INT)); });
    return p;
}
}  // namespace

Param Param::oid_array(const std::vector<Oid>& items) {
    return int_array(std::vector<int64_t>(items.begin(), items.end()), OIDOID, OIDARRAYOID);
}
Param Param::int4_array(const std::vector<int32_t>& items) {
    return int_array(std::vector<int64_t>(items.begin(), items.end()), INT4OID, INT4ARRAYOID);
}

Param Param::null(Oid type) {
    return Param{type, 0, true};
}
Param Param::timestamptz(int64_t ts) {
    return Param{TIMESTAMPTZOID, Int64GetDatum(ts), false};
}

Param Param::jsonb(const Json& j) {
    // A jsonb parameter built with PostgreSQL's jsonb API.
    return Param{JSONBOID, to_jsonb(j), false};
}

Param Param::text_array(const std::vector<std::string>& items) {
    // A text[] parameter.
    std::vector<Datum> elems;
    elems.reserve(items.size());
    for (const auto& s : items) elems.push_back(text(std::string_view(s)).value);
    Datum* data = elems.data();
    int n = static_cast<int>(elems.size());
    Datum arr = call([&] {
        return PointerGetDatum(construct_array(data, n, TEXTOID, -1, false, TYPALIGN_INT));
    });
    return Param{TEXTARRAYOID, arr, false};
}

// ---- values -------------------------------------------------------------------------------

namespace {
[[noreturn]] void wrong_type(const char* wanted) {
    throw Error(sqlstate::internal_error, fmt::format("matviews: result value is not {}", wanted));
}
}  // namespace

void Value::null_read(const char* wanted) const {
    // Every typed read is of a column the statement makes non-null when the catalog holds still;
    // a null there means a row or an object vanished or changed between two reads (a race),
    // which the caller can retry, not an internal error.
    if (is_null())
        throw Error(sqlstate::serialization_failure,
                    fmt::format("a catalog value matviews read was null ({} expected): the object "
                                "changed concurrently",
                                wanted))
            .hint("Retry the call.");
    wrong_type(wanted);
}

bool Value::as_bool() const {
    if (auto* b = std::get_if<bool>(&v_)) return *b;
    null_read("a boolean");
}

int64_t Value::as_int() const {
    if (auto* i = std::get_if<int64_t>(&v_)) return *i;
    if (auto* d = std::get_if<double>(&v_)) return static_cast<int64_t>(*d);
    null_read("an integer");
}

double Value::as_double() const {
    if (auto* d = std::get_if<double>(&v_)) return *d;
    if (auto* i = std::get_if<int64_t>(&v_)) return static_cast<double>(*i);
    null_read("a number");
}

const std::string& Value::as_string() const {
    if (auto* s = std::get_if<std::string>(&v_)) return *s;
    null_read("text");
}

const Json& Value::as_json() const {
    if (auto* j = std::get_if<Json>(&v_)) return *j;
    null_read("jsonb");
}

const std::vector<std::string>& Value::as_text_array() const {
    if (auto* a = std::get_if<std::vector<std::string>>(&v_)) return *a;
    null_read("a text array");
}

std::optional<std::string> Value::text() const {
    // The value's text, whatever its type.
    if (is_null()) return std::nullopt;
    if (auto* s = std::get_if<std::string>(&v_)) return *s;
    if (auto* b = std::get_if<bool>(&v_)) return std::string(*b ? "true" : "false");
    if (auto* i = std::get_if<int64_t>(&v_)) return std::to_string(*i);
    if (auto* d = std::get_if<double>(&v_)) return fmt::format("{}", *d);
    if (auto* a = std::get_if<std::vector<std::string>>(&v_)) return Json::string_array(*a).dump();
    return std::get<Json>(v_).dump();
}

Json Value::to_json() const {
    // The value as JSON.
    if (is_null()) return Json();
    if (auto* s = std::get_if<std::string>(&v_)) return Json(*s);
    if (auto* b = std::get_if<bool>(&v_)) return Json(*b);
    if (auto* i = std::get_if<int64_t>(&v_)) return Json(static_cast<long long>(*i));
    if (auto* d = std::get_if<double>(&v_)) return Json(*d);
    if (auto* a = std::get_if<std::vector<std::string>>(&v_)) return Json::string_array(*a);
    return std::get<Json>(v_);
}

const Value& Row::operator[](std::string_view column) const {
    // The cell of the named column.
    for (size_t i = 0; i < columns_->size(); i++)
        if ((*columns_)[i] == column) return cells_.at(i);
    throw Error(sqlstate::internal_error, fmt::format("matviews: no result column \"{}\"", column));
}

// ---- session ------------------------------------------------------------------------------

Spi::Spi() {
    // Opens an SPI connection.
    call([] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "matviews: SPI_connect failed");
    });
    connected_ = true;
}

Spi::~Spi() {
    // Finishes the SPI connection. Never throws: after an error inside SPI the rollback of the
    // surrounding (sub)transaction cleans up whatever SPI_finish cannot.
    if (!connected_) return;
    MemoryContext ctx = CurrentMemoryContext;
    PG_TRY();
    { SPI_finish(); }
    PG_CATCH();
    {
        MemoryContextSwitchTo(ctx);
        FlushErrorState();
    }
    PG_END_TRY();
}

namespace {

Value convert_cell(HeapTuple tuple, TupleDesc desc, int col) {
    // Converts one attribute of a result tuple into a C++ Value.
    bool isnull = false;
    Datum d = call([&] { return SPI_getbinval(tuple, desc, col, &isnull); });
    if (isnull) return Value();
    Oid type = TupleDescAttr(desc, col - 1)->atttypid;
    switch (type) {
        case BOOLOID:
            return Value(static_cast<bool>(DatumGetBool(d)));
        case INT2OID:
            return Value(static_cast<int64_t>(DatumGetInt16(d)));
        case INT4OID:
            return Value(static_cast<int64_t>(DatumGetInt32(d)));
        case INT8OID:
            return Value(static_cast<int64_t>(DatumGetInt64(d)));
        case OIDOID:
            return Value(static_cast<int64_t>(DatumGetObjectId(d)));
        case FLOAT4OID:
            return Value(static_cast<double>(DatumGetFloat4(d)));
        case FLOAT8OID:
            return Value(static_cast<double>(DatumGetFloat8(d)));
        case JSONBOID: {
            Jsonb* jb = call([&] { return DatumGetJsonbP(d); });
            return Value(from_jsonb(jb));
        }
        case TEXTARRAYOID: {
            Datum* elems = nullptr;
            bool* nulls = nullptr;
            int n = 0;
            call([&] {
                deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems,
                                  &nulls, &n);
            });
            std::vector<std::string> items;
            for (int i = 0; i < n; i++) {
                if (nulls[i]) {
                    items.emplace_back();
                    continue;
                }
                Datum e = elems[i];
                const char* s = call([&] { return text_to_cstring(DatumGetTextPP(e)); });
                items.emplace_back(s);
            }
            return Value(std::move(items));
        }
        default: {
            char* s = call([&] { return SPI_getvalue(tuple, desc, col); });
            return Value(std::string(s ? s : ""));
        }
    }
}

}  // namespace

namespace {

// Plans of matviews' statements by text and parameter types. Bounded: a statement whose text is
// built per call would otherwise grow it without end (those are few; past the bound they are
// planned each time, as before).
constexpr size_t kMaxKeptPlans = 512;

SPIPlanPtr kept_plan(const std::string& query, const std::vector<Oid>& types) {
    static std::unordered_map<std::string, SPIPlanPtr> plans;
    std::string key = query;
    for (Oid t : types) key += "\x1f" + std::to_string(t);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    if (plans.size() >= kMaxKeptPlans) return nullptr;
    Oid* t = const_cast<Oid*>(types.data());
    int nargs = static_cast<int>(types.size());
    SPIPlanPtr plan = call([&] {
        SPIPlanPtr p = SPI_prepare(query.c_str(), nargs, t);
        if (p != nullptr && SPI_keepplan(p) != 0) p = nullptr;
        return p;
    });
    if (plan != nullptr) plans.emplace(std::move(key), plan);
    return plan;
}

}  // namespace

// ---- one snapshot for a scope ---------------------------------------------------------------

namespace {
Snapshot g_snapshot = nullptr;
}

SnapshotScope::SnapshotScope() {
    snapshot_ = call([] { return RegisterSnapshot(GetLatestSnapshot()); });
    previous_ = g_snapshot;
    g_snapshot = static_cast<Snapshot>(snapshot_);
}

SnapshotScope::~SnapshotScope() {
    g_snapshot = static_cast<Snapshot>(previous_);
    try {
        call([&] { UnregisterSnapshot(static_cast<Snapshot>(snapshot_)); });
    } catch (...) {
        // Released already by the resource owner of an aborted (sub)transaction.
    }
}

// ---- kept rows ----------------------------------------------------------------------------

KeptRows::KeptRows() {
    context_ = call([] {
        return AllocSetContextCreate(CurrentMemoryContext, "matviews kept rows",
                                     ALLOCSET_DEFAULT_SIZES);
    });
}

KeptRows::~KeptRows() {
    if (context_ != nullptr) MemoryContextDelete(context_);  // cannot raise
}

KeptRows::KeptRows(KeptRows&& other) noexcept
    : context_(other.context_), desc_(other.desc_), tuples_(std::move(other.tuples_)) {
    other.context_ = nullptr;
    other.desc_ = nullptr;
}

int KeptRows::columns() const {
    return desc_ ? desc()->natts : 0;
}

bool KeptRows::is_null(size_t row, int col) const {
    bool isnull = true;
    HeapTuple t = tuple(row);
    TupleDesc d = desc();
    call([&] { heap_getattr(t, col + 1, d, &isnull); });
    return isnull;
}

Param KeptRows::param(size_t row, int col) const {
    bool isnull = true;
    HeapTuple t = tuple(row);
    TupleDesc d = desc();
    Datum v = call([&] { return heap_getattr(t, col + 1, d, &isnull); });
    return Param{TupleDescAttr(d, col)->atttypid, isnull ? Datum(0) : v, isnull};
}

int64_t KeptRows::as_int(size_t row, int col) const {
    Param p = param(row, col);
    if (p.is_null) return 0;
    switch (p.type) {
        case INT2OID:
            return DatumGetInt16(p.value);
        case INT4OID:
            return DatumGetInt32(p.value);
        case OIDOID:
            return DatumGetObjectId(p.value);
        default:
            return DatumGetInt64(p.value);
    }
}

bool KeptRows::as_bool(size_t row, int col) const {
    Param p = param(row, col);
    return !p.is_null && DatumGetBool(p.value);
}

KeptRows Spi::exec_kept(std::string_view sql, const std::vector<Param>& params) {
    KeptRows keep;
    run(sql, params, std::string(kPinnedSearchPath), &keep);
    return keep;
}

Result Spi::exec(std::string_view sql, const std::vector<Param>& params) {
    return run(sql, params, std::string(kPinnedSearchPath));
}

void Spi::exec_owner_code(std::string_view sql, const std::optional<std::string>& search_path) {
    run(sql, {}, search_path);
}

Result Spi::run(std::string_view sql, const std::vector<Param>& params,
                const std::optional<std::string>& search_path, KeptRows* keep) {
    // Runs sql with params bound as $1..$n under search_path (a GUC nest level, as a function's
    // SET clause: restored when the statement ends or fails) and converts the rows it returns.
    GucScope pin;
    if (search_path) pin.set("search_path", *search_path);
    std::string query(sql);
    std::vector<Oid> types;
    std::vector<Datum> values;
    std::string nulls;
    for (const auto& p : params) {
        types.push_back(p.type);
        values.push_back(p.value);
        nulls.push_back(p.is_null ? 'n' : ' ');
    }
    const char* q = query.c_str();
    int nargs = static_cast<int>(params.size());
    Oid* t = types.data();
    Datum* v = values.data();
    const char* n = nulls.c_str();
    // matviews' own parameterized statements (pinned search_path) keep their plans for the
    // backend's lifetime: parsing and planning them on every call was most of an operation's
    // fixed cost. PostgreSQL's plan cache re-plans a kept plan when a relation it uses changes,
    // or when it depends on row-level security and the role differs.
    SPIPlanPtr plan = nullptr;
    if (nargs > 0 && search_path && *search_path == kPinnedSearchPath)
        plan = kept_plan(query, types);
    Snapshot snapshot = g_snapshot;
    int rc = call([&] {
        if (snapshot != nullptr) {
            // One snapshot for the scope (SnapshotScope): SPI copies it and advances its command
            // id, so this transaction's own earlier changes are seen.
            SPIPlanPtr p = plan != nullptr ? plan : SPI_prepare(q, nargs, t);
            if (p == nullptr) return SPI_result;
            int r = SPI_execute_snapshot(p, v, n, snapshot, InvalidSnapshot, false, true, 0);
            if (plan == nullptr) SPI_freeplan(p);
            return r;
        }
        if (plan != nullptr) return SPI_execute_plan(plan, v, n, false, 0);
        return nargs == 0 ? SPI_execute(q, false, 0)
                          : SPI_execute_with_args(q, nargs, t, v, n, false, 0);
    });
    if (rc < 0)
        throw Error(sqlstate::internal_error,
                    fmt::format("matviews: SPI error {}", SPI_result_code_string(rc)))
            .detail(query);

    Result result;
    result.processed = SPI_processed;
    SPITupleTable* tab = SPI_tuptable;
    if (keep != nullptr) {
        // Copies of the tuples in the kept rows' context, nothing converted.
        uint64 count = SPI_processed;
        MemoryContext cx = keep->context_;
        void* desc = nullptr;
        std::vector<void*>& tuples = keep->tuples_;
        tuples.reserve(count);
        if (tab != nullptr) {
            desc = call([&] {
                MemoryContext old = MemoryContextSwitchTo(cx);
                TupleDesc d = CreateTupleDescCopy(tab->tupdesc);
                MemoryContextSwitchTo(old);
                return d;
            });
            for (uint64 r = 0; r < count; r++)
                tuples.push_back(call([&] {
                    MemoryContext old = MemoryContextSwitchTo(cx);
                    HeapTuple copy = heap_copytuple(tab->vals[r]);
                    MemoryContextSwitchTo(old);
                    return copy;
                }));
            call([&] { SPI_freetuptable(tab); });
        }
        keep->desc_ = desc;
        return result;
    }
    if (tab != nullptr) {
        TupleDesc desc = tab->tupdesc;
        auto columns = std::make_shared<std::vector<std::string>>();
        for (int c = 0; c < desc->natts; c++)
            columns->emplace_back(NameStr(TupleDescAttr(desc, c)->attname));
        result.columns = columns;
        result.rows.reserve(SPI_processed);
        for (uint64 r = 0; r < SPI_processed; r++) {
            std::vector<Value> cells;
            cells.reserve(desc->natts);
            for (int c = 1; c <= desc->natts; c++)
                cells.push_back(convert_cell(tab->vals[r], desc, c));
            result.rows.emplace_back(result.columns, std::move(cells));
        }
        call([&] { SPI_freetuptable(tab); });
    }
    return result;
}

Value Spi::scalar(std::string_view sql, const std::vector<Param>& params) {
    // The first column of the first row.
    Result r = exec(sql, params);
    if (r.rows.empty() || r.rows[0].size() == 0) return Value();
    return r.rows[0][0];
}

}  // namespace mv::pg
