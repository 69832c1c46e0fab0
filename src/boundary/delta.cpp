// Applying an incremental refresh's difference to a materialized view (see delta.hpp): the
// comparison in C++ over image hashes, the changes through the table AM, one guarded call.
#include "boundary/delta.hpp"

#include <unordered_map>

extern "C" {
#include "access/table.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "utils/datum.h"
#include "storage/itemptr.h"
#include "utils/fmgrprotos.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

namespace mv::pg {

namespace {

// The columns of a kept row, from `first` (0-based) on, hashed or compared as images.
uint32 row_hash(HeapTuple t, TupleDesc d, int first, const std::vector<int>* only) {
    return call([&] {
        uint32 h = 0;
        int n = only ? static_cast<int>(only->size()) : d->natts - first;
        for (int i = 0; i < n; i++) {
            int att = only ? (*only)[i] - 1 + first : first + i;
            Form_pg_attribute a = TupleDescAttr(d, att);
            bool isnull;
            Datum v = heap_getattr(t, att + 1, d, &isnull);
            uint32 c = isnull ? 0x9e3779b9u : datum_image_hash(v, a->attbyval, a->attlen);
            h = (h * 31u) ^ c;
        }
        return h;
    });
}

bool rows_equal(HeapTuple a, TupleDesc da, int fa, HeapTuple b, TupleDesc db, int fb,
                const std::vector<int>* only) {
    return call([&] {
        int n = only ? static_cast<int>(only->size()) : da->natts - fa;
        for (int i = 0; i < n; i++) {
            int ia = only ? (*only)[i] - 1 + fa : fa + i;
            int ib = only ? (*only)[i] - 1 + fb : fb + i;
            Form_pg_attribute att = TupleDescAttr(da, ia);
            bool na, nb;
            Datum va = heap_getattr(a, ia + 1, da, &na);
            Datum vb = heap_getattr(b, ib + 1, db, &nb);
            if (na != nb) return false;
            if (!na && !datum_image_eq(va, vb, att->attbyval, att->attlen)) return false;
        }
        return true;
    });
}

}  // namespace

DeltaCounts apply_view_delta(Oid view, const KeptRows& current, const KeptRows& fresh,
                             const std::vector<int>& key_attnos) {
    DeltaCounts counts;
    if (current.size() == 0 && fresh.size() == 0) return counts;
    TupleDesc cd = current.desc();
    TupleDesc fd = fresh.desc();
    if (current.size() > 0 && fresh.size() > 0 && cd->natts != fd->natts + 1)
        throw Error(sqlstate::internal_error,
                    "matviews: recomputed rows do not match the view's columns");

    // Pair each current row with an unmatched identical fresh row.
    std::unordered_multimap<uint32, size_t> by_hash;
    for (size_t i = 0; i < fresh.size(); i++)
        by_hash.emplace(row_hash(fresh.tuple(i), fd, 0, nullptr), i);
    std::vector<bool> matched(fresh.size(), false);
    std::vector<size_t> deletes;
    for (size_t r = 0; r < current.size(); r++) {
        uint32 h = row_hash(current.tuple(r), cd, 1, nullptr);
        bool found = false;
        auto range = by_hash.equal_range(h);
        for (auto it = range.first; it != range.second; ++it) {
            size_t i = it->second;
            if (matched[i]) continue;
            if (rows_equal(current.tuple(r), cd, 1, fresh.tuple(i), fd, 0, nullptr)) {
                matched[i] = true;
                found = true;
                break;
            }
        }
        if (!found) deletes.push_back(r);
    }
    std::vector<size_t> inserts;
    for (size_t i = 0; i < fresh.size(); i++)
        if (!matched[i]) inserts.push_back(i);

    // A deleted and an inserted row with the same key: one updated row.
    std::unordered_multimap<uint32, size_t> deleted_keys;
    for (size_t r : deletes)
        deleted_keys.emplace(row_hash(current.tuple(r), cd, 1, &key_attnos), r);
    std::vector<bool> paired(current.size(), false);
    for (size_t i : inserts) {
        auto range = deleted_keys.equal_range(row_hash(fresh.tuple(i), fd, 0, &key_attnos));
        for (auto it = range.first; it != range.second; ++it) {
            if (paired[it->second]) continue;
            if (rows_equal(current.tuple(it->second), cd, 1, fresh.tuple(i), fd, 0, &key_attnos)) {
                paired[it->second] = true;
                counts.updated++;
                break;
            }
        }
    }
    counts.deleted = static_cast<int64_t>(deletes.size()) - counts.updated;
    counts.inserted = static_cast<int64_t>(inserts.size()) - counts.updated;
    if (deletes.empty() && inserts.empty()) return counts;

    // Deletes first, so a new row with the key of a deleted one passes the unique check (the
    // deleted version is this transaction's own).
    std::vector<ItemPointerData> tids;
    for (size_t r : deletes) {
        HeapTuple t = current.tuple(r);
        bool isnull;
        Datum v = call([&] { return heap_getattr(t, 1, cd, &isnull); });
        tids.push_back(*reinterpret_cast<ItemPointer>(DatumGetPointer(v)));
    }
    const KeptRows* f = &fresh;
    call([&] {
        Relation rel = table_open(view, NoLock);
        for (auto& tid : tids) {
            CHECK_FOR_INTERRUPTS();
            simple_table_tuple_delete(rel, &tid,
                                      ActiveSnapshotSet() ? GetActiveSnapshot() : nullptr);
        }
        CommandCounterIncrement();
        if (!inserts.empty()) {
            EState* estate = CreateExecutorState();
            ResultRelInfo* rri = makeNode(ResultRelInfo);
            InitResultRelInfo(rri, rel, 1, nullptr, 0);
            ExecOpenIndices(rri, false);
            estate->es_output_cid = GetCurrentCommandId(true);
            TupleTableSlot* slot = table_slot_create(rel, &estate->es_tupleTable);
            for (size_t i : inserts) {
                CHECK_FOR_INTERRUPTS();
                ExecClearTuple(slot);
                heap_deform_tuple(f->tuple(i), fd, slot->tts_values, slot->tts_isnull);
                ExecStoreVirtualTuple(slot);
                simple_table_tuple_insert(rel, slot);
                ExecInsertIndexTuples(rri, slot, estate, false, false, nullptr, NIL);
                ResetPerTupleExprContext(estate);
            }
            ExecCloseIndices(rri);
            ExecResetTupleTable(estate->es_tupleTable, false);
            FreeExecutorState(estate);
        }
        table_close(rel, NoLock);
        CommandCounterIncrement();
    });
    return counts;
}

}  // namespace mv::pg
