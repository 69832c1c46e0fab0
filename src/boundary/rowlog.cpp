// Transition rows to jsonb (see rowlog.hpp): one guarded call walks the tuplestore with a read
// pointer of its own and builds each chunk with pushJsonbValue.
#include "boundary/rowlog.hpp"

extern "C" {
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
}

namespace mv::pg {

namespace {

struct ColumnOut {
    bool skip;  // dropped
    int kind;   // 0 output text, 1 jsonb
    FmgrInfo out;
    JsonbValue key;
};

void push_string(JsonbParseState** st, const char* s, JsonbIteratorToken tok) {
    JsonbValue v;
    v.type = jbvString;
    v.val.string.val = const_cast<char*>(s);
    v.val.string.len = static_cast<int>(strlen(s));
    pushJsonbValue(st, tok, &v);
}

}  // namespace

std::vector<Param> transition_rows(void* trigger_data, bool old_rows, int rows_per_chunk) {
    auto* td = static_cast<TriggerData*>(trigger_data);
    Tuplestorestate* store = old_rows ? td->tg_oldtable : td->tg_newtable;
    std::vector<Param> chunks;
    if (store == nullptr) return chunks;
    TupleDesc desc = RelationGetDescr(td->tg_relation);
    // Datums of up to one chunk at a time, built in the caller's context.
    constexpr int kMaxChunks = 1 << 20;
    Datum* out = static_cast<Datum*>(call([&] { return palloc(sizeof(Datum) * 64); }));
    int capacity = 64;
    int n = call([&] {
        int made = 0;
        ColumnOut* cols = static_cast<ColumnOut*>(palloc0(sizeof(ColumnOut) * desc->natts));
        for (int i = 0; i < desc->natts; i++) {
            Form_pg_attribute a = TupleDescAttr(desc, i);
            cols[i].skip = a->attisdropped;
            if (a->attisdropped) continue;
            // jsonb keeps its JSON; everything else (json too: not every json text is valid
            // jsonb) is its output text.
            cols[i].kind = getBaseType(a->atttypid) == JSONBOID ? 1 : 0;
            Oid fn;
            bool varlena;
            getTypeOutputInfo(a->atttypid, &fn, &varlena);
            fmgr_info(fn, &cols[i].out);
            cols[i].key.type = jbvString;
            cols[i].key.val.string.val = NameStr(a->attname);
            cols[i].key.val.string.len = static_cast<int>(strlen(NameStr(a->attname)));
        }
        int ptr = tuplestore_alloc_read_pointer(store, 0);
        tuplestore_select_read_pointer(store, ptr);
        tuplestore_rescan(store);
        TupleTableSlot* slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
        MemoryContext rows_cx =
            AllocSetContextCreate(CurrentMemoryContext, "matviews capture", ALLOCSET_DEFAULT_SIZES);
        MemoryContext outer = CurrentMemoryContext;
        bool more = true;
        while (more && made < kMaxChunks) {
            MemoryContext old = MemoryContextSwitchTo(rows_cx);
            JsonbParseState* st = nullptr;
            pushJsonbValue(&st, WJB_BEGIN_ARRAY, nullptr);
            int rows = 0;
            size_t bytes = 0;  // kept far below jsonb's 256 MB limit per chunk
            while (rows < rows_per_chunk && bytes < (32u << 20) &&
                   (more = tuplestore_gettupleslot(store, true, false, slot))) {
                CHECK_FOR_INTERRUPTS();
                slot_getallattrs(slot);
                pushJsonbValue(&st, WJB_BEGIN_OBJECT, nullptr);
                for (int i = 0; i < desc->natts; i++) {
                    if (cols[i].skip) continue;
                    pushJsonbValue(&st, WJB_KEY, &cols[i].key);
                    if (slot->tts_isnull[i]) {
                        JsonbValue null_value;
                        null_value.type = jbvNull;
                        pushJsonbValue(&st, WJB_VALUE, &null_value);
                        continue;
                    }
                    Datum v = slot->tts_values[i];
                    if (cols[i].kind == 0) {
                        char* text = OutputFunctionCall(&cols[i].out, v);
                        bytes += strlen(text);
                        push_string(&st, text, WJB_VALUE);
                        continue;
                    }
                    Jsonb* j = DatumGetJsonbP(v);
                    bytes += VARSIZE(j);
                    JsonbValue bin;
                    bin.type = jbvBinary;
                    bin.val.binary.data = &j->root;
                    bin.val.binary.len = static_cast<int>(VARSIZE(j) - VARHDRSZ);
                    pushJsonbValue(&st, WJB_VALUE, &bin);
                }
                pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
                rows++;
            }
            JsonbValue* arr = pushJsonbValue(&st, WJB_END_ARRAY, nullptr);
            MemoryContextSwitchTo(outer);
            if (rows > 0) {
                if (made == capacity) {
                    capacity *= 2;
                    out = static_cast<Datum*>(repalloc(out, sizeof(Datum) * capacity));
                }
                out[made++] = JsonbPGetDatum(JsonbValueToJsonb(arr));
            }
            // The slot may own a tuple read back from a spilled tuplestore, allocated in rows_cx:
            // release it before the context goes.
            ExecClearTuple(slot);
            MemoryContextReset(rows_cx);
            (void)old;
        }
        ExecDropSingleTupleTableSlot(slot);
        MemoryContextDelete(rows_cx);
        return made;
    });
    for (int i = 0; i < n; i++) chunks.push_back(Param{JSONBOID, out[i], false});
    return chunks;
}

bool output_depends_on_settings(void* trigger_data) {
    auto* td = static_cast<TriggerData*>(trigger_data);
    TupleDesc desc = RelationGetDescr(td->tg_relation);
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(desc, i);
        if (a->attisdropped) continue;
        switch (a->atttypid) {
            case BOOLOID:
            case INT2OID:
            case INT4OID:
            case INT8OID:
            case OIDOID:
            case NUMERICOID:
            case TEXTOID:
            case VARCHAROID:
            case BPCHAROID:
            case NAMEOID:
            case UUIDOID:
            case JSONBOID:
            case JSONOID:
            case CHAROID:
                continue;
            default:
                return true;  // anything else, to be safe
        }
    }
    return false;
}

}  // namespace mv::pg
