// The SQL API: one C entry point per matviews.* function. Each decodes its arguments, calls the
// operation and returns the jsonb response; everything runs under the entry guard.
#include "boundary/args.hpp"
#include "boundary/capture.hpp"
#include "boundary/wakeup.hpp"
#include "catalog/store.hpp"
#include "ops/ops.hpp"
#include "worker/shmem.hpp"

extern "C" {
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "utils/rel.h"
}

using namespace mv;
using pg::arg_bool_or;
using pg::arg_jsonb;
using pg::arg_text;
using pg::arg_text_array;
using pg::arg_text_or;

MV_FUNCTION(matviews_create) {
    // matviews.create(name, sql, refresh_strategy, unique_index_columns, force, with_data,
    //                 row_count_strategy, schedule, source)
    ops::CreateArgs a;
    a.name = arg_text(fcinfo, 0);
    a.sql = arg_text(fcinfo, 1);
    a.refresh_strategy = arg_text_or(fcinfo, 2, "regular");
    a.unique_index_columns = arg_text_array(fcinfo, 3);
    a.force = arg_bool_or(fcinfo, 4, false);
    a.with_data = arg_bool_or(fcinfo, 5, true);
    a.row_count_strategy = arg_text(fcinfo, 6);
    a.schedule = arg_text(fcinfo, 7);
    a.source = arg_text(fcinfo, 8);
    return pg::return_jsonb(ops::create(a));
}

MV_FUNCTION(matviews_adopt) {
    // matviews.adopt(name, refresh_strategy, unique_index_columns, options)
    ops::AdoptArgs a;
    a.name = arg_text(fcinfo, 0);
    a.refresh_strategy = arg_text_or(fcinfo, 1, "regular");
    a.unique_index_columns = arg_text_array(fcinfo, 2);
    a.options = arg_jsonb(fcinfo, 3);
    return pg::return_jsonb(ops::adopt(a));
}

MV_FUNCTION(matviews_refresh) {
    // matviews.refresh(name, strategy, row_count_strategy, cascade)
    ops::RefreshArgs a;
    a.name = arg_text(fcinfo, 0);
    a.strategy = arg_text(fcinfo, 1);
    a.row_count_strategy = arg_text(fcinfo, 2);
    a.cascade = arg_bool_or(fcinfo, 3, false);
    return pg::return_jsonb(ops::refresh(a));
}

MV_FUNCTION(matviews_swap) {
    // matviews.swap(name, sql, row_count_strategy)
    ops::SwapArgs a;
    a.name = arg_text(fcinfo, 0);
    a.sql = arg_text(fcinfo, 1);
    a.row_count_strategy = arg_text(fcinfo, 2);
    return pg::return_jsonb(ops::swap(a));
}

MV_FUNCTION(matviews_enqueue) {
    // matviews.enqueue(name, operation, strategy, run_at)
    ops::EnqueueArgs a;
    a.name = arg_text(fcinfo, 0);
    a.operation = arg_text_or(fcinfo, 1, "refresh");
    a.strategy = arg_text(fcinfo, 2);
    auto run_at = pg::arg_timestamptz(fcinfo, 3);
    a.run_at = run_at ? *run_at : pg::current_timestamp();
    return pg::return_jsonb(ops::enqueue(a));
}

MV_FUNCTION(matviews_schedule) {
    // matviews.schedule(name, schedule)
    return pg::return_jsonb(ops::schedule(arg_text(fcinfo, 0), arg_text(fcinfo, 1)));
}

MV_FUNCTION(matviews_unschedule) {
    // matviews.unschedule(name)
    return pg::return_jsonb(ops::unschedule(arg_text(fcinfo, 0)));
}

MV_FUNCTION(matviews_watch) {
    // matviews.watch(name, min_interval)
    return pg::return_jsonb(ops::watch(arg_text(fcinfo, 0), arg_text(fcinfo, 1)));
}

MV_FUNCTION(matviews_unwatch) {
    // matviews.unwatch(name)
    return pg::return_jsonb(ops::unwatch(arg_text(fcinfo, 0)));
}

MV_FUNCTION(matviews_on_change) {
    // The statement trigger on a watched table: notes the table in this backend; the commit
    // hands it to the worker (boundary/capture.hpp). No table is written, no lock taken.
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "matviews._on_change() is a trigger function")
            .hint("matviews.watch() puts it on the tables a watched view reads.");
    auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
    pg::note_change(RelationGetRelid(data->tg_relation));
    return PointerGetDatum(nullptr);  // an AFTER trigger's result is ignored, but must not be null
}

MV_FUNCTION(matviews_capture) {
    // The capture triggers of an incremental view's tables: the statement's transition rows go
    // to matviews.changes (in this transaction: a rollback takes them back); the change is also
    // noted for watches, as matviews_watch would.
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "matviews._capture() is a trigger function")
            .hint("An incremental view puts it on the tables it reads.");
    auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!TRIGGER_FIRED_FOR_STATEMENT(data->tg_event) || !TRIGGER_FIRED_AFTER(data->tg_event))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "matviews._capture() must be an AFTER ... FOR EACH STATEMENT trigger");
    pg::note_change(RelationGetRelid(data->tg_relation));
    pg::Spi spi;
    catalog::Store(spi).capture_statement(data);
    return PointerGetDatum(nullptr);
}

MV_FUNCTION(matviews_explain) {
    // matviews.explain(name, sql)
    return pg::return_jsonb(ops::explain(arg_text(fcinfo, 0), arg_text(fcinfo, 1)));
}

MV_FUNCTION(matviews_wait) {
    // matviews.wait(run_id, timeout)
    auto run_id = pg::arg_int8(fcinfo, 0);
    if (!run_id)
        throw Error(sqlstate::null_value_not_allowed, "run_id must not be null")
            .hint("Pass the run_id of matviews.enqueue()'s response.");
    auto timeout = pg::arg_interval_ms(fcinfo, 1);
    return pg::return_jsonb(ops::wait(*run_id, timeout ? *timeout : 60000));
}

MV_FUNCTION(matviews_cancel) {
    // matviews.cancel(run_id)
    auto run_id = pg::arg_int8(fcinfo, 0);
    if (!run_id)
        throw Error(sqlstate::null_value_not_allowed, "run_id must not be null")
            .hint("Pass the run_id of matviews.enqueue()'s response.");
    return pg::return_jsonb(ops::cancel(*run_id));
}

MV_FUNCTION(matviews_on_install) {
    // Called by the install script: ask the launcher for a scheduler once CREATE EXTENSION commits.
    pg::request_scheduler_at_commit();
    PG_RETURN_VOID();
}

MV_FUNCTION(matviews_on_sql_drop) {
    // The sql_drop event trigger: a plain DROP of a managed view removes its definition, and its
    // queued runs are cancelled. It fires after PostgreSQL allowed the DROP.
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "matviews._on_sql_drop() is an event trigger function");
    pg::Spi spi;
    catalog::Store store(spi);
    if (!store.schema_current()) PG_RETURN_NULL();  // an older version: see docs/upgrading.md
    store.on_sql_drop();
    PG_RETURN_NULL();
}

MV_FUNCTION(matviews_on_ddl_end) {
    // The ddl_command_end event trigger: RENAME, SET SCHEMA and OWNER TO are followed, and so
    // are new partitions of watched tables and replaced views under watched views.
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        throw Error(sqlstate::object_not_in_prerequisite_state,
                    "matviews._on_ddl_end() is an event trigger function");
    pg::Spi spi;
    catalog::Store store(spi);
    // Not installed (DROP EXTENSION fires it too), or an older version: see docs/upgrading.md.
    if (!store.schema_current()) PG_RETURN_NULL();
    catalog::Store::DdlCommands commands = store.ddl_commands();
    store.sync_relation_names(commands);
    store.follow_watched_ddl(commands);
    PG_RETURN_NULL();
}

MV_FUNCTION(matviews_delete) {
    // matviews.delete(name, cascade, if_exists, keep_definition)
    ops::DeleteArgs a;
    a.name = arg_text(fcinfo, 0);
    a.cascade = arg_bool_or(fcinfo, 1, false);
    a.if_exists = arg_bool_or(fcinfo, 2, true);
    a.keep_definition = arg_bool_or(fcinfo, 3, false);
    return pg::return_jsonb(ops::remove(a));
}

MV_FUNCTION(matviews_alter) {
    // matviews.alter(name, refresh_strategy, unique_index_columns, options, enabled)
    ops::AlterArgs a;
    a.name = arg_text(fcinfo, 0);
    a.refresh_strategy = arg_text(fcinfo, 1);
    a.unique_index_columns = arg_text_array(fcinfo, 2);
    a.options = arg_jsonb(fcinfo, 3);
    a.enabled = pg::arg_bool(fcinfo, 4);
    return pg::return_jsonb(ops::alter(a));
}
