// Planner statistics carried to a replacement relation (see statistics.hpp).
#include "boundary/statistics.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_statistic.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

namespace mv::pg {

CopiedStatistics copy_statistics(Oid from, Oid to) {
    CopiedStatistics out;
    call([&] {
        Relation src = relation_open(from, AccessShareLock);
        Relation dst = relation_open(to, NoLock);
        Relation sd = table_open(StatisticRelationId, RowExclusiveLock);
        TupleDesc sdesc = RelationGetDescr(src);
        TupleDesc ddesc = RelationGetDescr(dst);
        for (int i = 0; i < ddesc->natts; i++) {
            Form_pg_attribute d = TupleDescAttr(ddesc, i);
            if (d->attisdropped) continue;
            out.columns++;
            Form_pg_attribute s = nullptr;
            for (int j = 0; j < sdesc->natts && !s; j++) {
                Form_pg_attribute c = TupleDescAttr(sdesc, j);
                if (!c->attisdropped && namestrcmp(&c->attname, NameStr(d->attname)) == 0) s = c;
            }
            if (!s || s->atttypid != d->atttypid || s->atttypmod != d->atttypmod ||
                s->attcollation != d->attcollation)
                continue;
            HeapTuple tup = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(from),
                                            Int16GetDatum(s->attnum), BoolGetDatum(false));
            if (!HeapTupleIsValid(tup)) continue;
            Datum values[Natts_pg_statistic];
            bool nulls[Natts_pg_statistic];
            bool replace[Natts_pg_statistic] = {};
            values[Anum_pg_statistic_starelid - 1] = ObjectIdGetDatum(to);
            values[Anum_pg_statistic_staattnum - 1] = Int16GetDatum(d->attnum);
            nulls[Anum_pg_statistic_starelid - 1] = false;
            nulls[Anum_pg_statistic_staattnum - 1] = false;
            replace[Anum_pg_statistic_starelid - 1] = true;
            replace[Anum_pg_statistic_staattnum - 1] = true;
            HeapTuple copy = heap_modify_tuple(tup, RelationGetDescr(sd), values, nulls, replace);
            ReleaseSysCache(tup);
            CatalogTupleInsert(sd, copy);
            heap_freetuple(copy);
            out.copied++;
        }
        table_close(sd, RowExclusiveLock);
        relation_close(dst, NoLock);
        relation_close(src, AccessShareLock);
        // The planner reads them through the syscache from the next command on.
        CommandCounterIncrement();
    });
    return out;
}

bool columns_unchanged(Oid from, Oid to) {
    return call([&] {
        Relation a = relation_open(from, AccessShareLock);
        Relation b = relation_open(to, NoLock);
        TupleDesc ad = RelationGetDescr(a);
        TupleDesc bd = RelationGetDescr(b);
        bool same = ad->natts <= bd->natts;
        for (int i = 0; same && i < ad->natts; i++) {
            Form_pg_attribute x = TupleDescAttr(ad, i);
            Form_pg_attribute y = TupleDescAttr(bd, i);
            if (x->attisdropped) continue;  // no query can read it
            same = !y->attisdropped && namestrcmp(&y->attname, NameStr(x->attname)) == 0 &&
                   x->atttypid == y->atttypid && x->atttypmod == y->atttypmod &&
                   x->attcollation == y->attcollation;
        }
        relation_close(b, NoLock);
        relation_close(a, AccessShareLock);
        return same;
    });
}

std::vector<std::string> attribute_names(Oid relid) {
    int n = 0;
    char** names = call([&] {
        Relation rel = relation_open(relid, AccessShareLock);
        TupleDesc desc = RelationGetDescr(rel);
        auto** out = static_cast<char**>(palloc(sizeof(char*) * (desc->natts + 1)));
        for (int i = 0; i < desc->natts; i++)
            if (!TupleDescAttr(desc, i)->attisdropped)
                out[n++] = pstrdup(NameStr(TupleDescAttr(desc, i)->attname));
        relation_close(rel, NoLock);
        return out;
    });
    std::vector<std::string> result(names, names + n);
    call([&] {
        for (int i = 0; i < n; i++) pfree(names[i]);
        pfree(names);
    });
    return result;
}

}  // namespace mv::pg
