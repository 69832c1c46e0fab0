# Refresh on change across processes (matviews.watch): a committed change is never lost.
#  1. Commits whose marks live only in shared memory (the scheduler is stopped with SIGSTOP,
#     so it never reads them), then kill -9: after the crash restart the scheduler treats
#     every watched view as stale once, and the view is refreshed with the change.
#  2. A streaming standby never refreshes (no matviews process runs there); a change the
#     primary's worker never took in is refreshed by the standby's worker after promotion.
#  3. Without shared_preload_libraries, watch records the request and says in response.warning
#     that no worker runs; writers work; once the library is preloaded the view is refreshed.
#  4. A watch survives pg_dump and restore: the triggers come back with their tables, the
#     watch's relations are bound to the restored tables, and a write to them is followed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $setup = q{
CREATE EXTENSION matviews;
CREATE TABLE prefs (user_id int PRIMARY KEY, enabled boolean NOT NULL);
INSERT INTO prefs SELECT g, true FROM generate_series(1, 100) g;
SELECT matviews.create('enabled_users', 'SELECT count(*) FILTER (WHERE enabled) AS n FROM prefs',
                       refresh_strategy => 'concurrent', unique_index_columns => '{n}');
};

sub scheduler_pid {
    my ($node) = @_;
    my $pid;
    $node->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'})
      or return undef;
    $pid = $node->safe_psql('postgres',
        q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'});
    return $pid;
}

# 1. Crash with unread marks.
my $node = PostgreSQL::Test::Cluster->new('watch_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', $setup);
$node->safe_psql('postgres', q{SELECT matviews.watch('enabled_users', '0')});
ok($node->poll_query_until('postgres',
        q{SELECT NOT stale AND last_status = 'success' FROM matviews.status WHERE view = 'public.enabled_users'}),
    'crash: the new watch refreshed the view once');
my $pid = scheduler_pid($node);
ok($pid, 'crash: the scheduler runs');
kill 'STOP', $pid;
$node->safe_psql('postgres', q{UPDATE prefs SET enabled = false WHERE user_id <= 10});
$node->safe_psql('postgres', q{DELETE FROM prefs WHERE user_id > 95});
is($node->safe_psql('postgres', q{SELECT stale FROM matviews.status WHERE view = 'public.enabled_users'}),
    'f', 'crash: the commits are counted only in shared memory (the scheduler is stopped)');
is($node->safe_psql('postgres', q{SELECT n FROM enabled_users}), '100', 'crash: the view is not refreshed yet');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
ok($node->poll_query_until('postgres', q{SELECT n = 85 FROM enabled_users}),
    'crash: after the restart the view is refreshed with every committed change');
like(slurp_file($node->logfile, $log_offset), qr/terminated by signal 9/,
    'crash: the server went through crash recovery');
is($node->safe_psql('postgres', q{
    SELECT string_agg(trigger || ':' || status, ',' ORDER BY id) FROM matviews.runs
    WHERE view = 'public.enabled_users' AND trigger = 'watch'}),
    'watch:success,watch:success', 'crash: one watch run before the crash, one after');
ok($node->poll_query_until('postgres',
        q{SELECT NOT stale AND pending_changes = 0 FROM matviews.status WHERE view = 'public.enabled_users'}),
    'crash: the view is fresh again');
# A rolled-back write after the restart changes nothing; a committed one is followed.
$node->safe_psql('postgres', q{BEGIN; DELETE FROM prefs; ROLLBACK;});
$node->safe_psql('postgres', q{UPDATE prefs SET enabled = true WHERE user_id <= 5});
ok($node->poll_query_until('postgres', q{SELECT n = 90 FROM enabled_users}),
    'crash: the watch keeps working after the restart');
$node->stop;

# 2. Standby and promotion.
my $primary = PostgreSQL::Test::Cluster->new('watch_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
});
$primary->start;
$primary->safe_psql('postgres', $setup);
$primary->safe_psql('postgres', q{SELECT matviews.watch('enabled_users', '0')});
ok($primary->poll_query_until('postgres',
        q{SELECT NOT stale AND last_status = 'success' FROM matviews.status WHERE view = 'public.enabled_users'}),
    'standby: the primary refreshed the watched view');
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('watch_standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
# A change the primary's worker follows replicates as the refreshed view.
$primary->safe_psql('postgres', q{UPDATE prefs SET enabled = false WHERE user_id <= 10});
ok($primary->poll_query_until('postgres', q{SELECT n = 90 FROM enabled_users}),
    'standby: the primary follows a change');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT n FROM enabled_users}), '90',
    'standby: the refreshed view replicates');
is($standby->safe_psql('postgres',
        q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'matviews%'}),
    '0', 'standby: no matviews process runs on the standby');
# The primary's scheduler is stopped: the next change is committed and replicated, but no
# worker refreshes the view for it.
my $primary_scheduler = scheduler_pid($primary);
kill 'STOP', $primary_scheduler;
$primary->safe_psql('postgres', q{UPDATE prefs SET enabled = false WHERE user_id <= 20});
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE enabled) || '/' || (SELECT n FROM enabled_users) FROM prefs}),
    '80/90', 'standby: the change replicated, the view was not refreshed, and the standby does not refresh it');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM matviews.runs WHERE status IN ('queued', 'running')}),
    '0', 'standby: no run waits');
my $watch_runs = q{SELECT count(*) FROM matviews.runs
                    WHERE view = 'public.enabled_users' AND trigger = 'watch' AND status = 'success'};
my $runs_before = $standby->safe_psql('postgres', $watch_runs);
$standby->promote;
ok($standby->poll_query_until('postgres', q{SELECT n = 80 FROM enabled_users}),
    'standby: after promotion its worker refreshes the view with the change');
cmp_ok($standby->safe_psql('postgres', $watch_runs), '>', $runs_before,
    'standby: by a watch run of the promoted server');
$standby->safe_psql('postgres', q{UPDATE prefs SET enabled = true WHERE user_id <= 20});
ok($standby->poll_query_until('postgres', q{SELECT n = 100 FROM enabled_users}),
    'standby: the promoted server follows new changes');
kill 'CONT', $primary_scheduler;
$standby->stop;
$primary->stop;

# 3. Without shared_preload_libraries.
my $plain = PostgreSQL::Test::Cluster->new('watch_no_preload');
$plain->init;
$plain->append_conf('postgresql.conf', "max_worker_processes = 16\n");
$plain->start;
$plain->safe_psql('postgres', $setup);
my ($status, $warning) = split /\|/, $plain->safe_psql('postgres',
    q{SELECT r->>'status', r->'response'->>'warning' FROM matviews.watch('enabled_users', '0') r});
is($status, 'updated', 'no preload: watch records the request');
like($warning, qr/no matviews worker is running.*shared_preload_libraries/,
    'no preload: response.warning says that no worker runs');
is($plain->safe_psql('postgres', q{SELECT watched::text || ' ' || stale::text FROM matviews.status}),
    'true true', 'no preload: the view is watched, and stale');
$plain->safe_psql('postgres', q{UPDATE prefs SET enabled = false WHERE user_id <= 30});
is($plain->safe_psql('postgres', q{SELECT n FROM enabled_users}), '100',
    'no preload: writers work, and nothing refreshes the view');
$plain->append_conf('postgresql.conf', "shared_preload_libraries = 'matviews'\n");
$plain->restart;
ok($plain->poll_query_until('postgres', q{SELECT n = 70 FROM enabled_users}),
    'no preload: once the worker runs, the view is refreshed');

# 4. pg_dump and restore (into another database of the same server).
my $dump = $plain->basedir . '/watch.dump';
$plain->safe_psql('postgres', q{CREATE VIEW prefs_enabled AS SELECT * FROM prefs WHERE enabled});
$plain->safe_psql('postgres', q{SELECT matviews.create('via_view', 'SELECT count(*) AS n FROM prefs_enabled')});
$plain->safe_psql('postgres', q{SELECT matviews.watch('via_view', '0')});
ok($plain->poll_query_until('postgres',
        q{SELECT bool_and(NOT stale) FROM matviews.status WHERE watched}),
    'dump: both watched views are fresh before the dump');
command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $plain->connstr('postgres')], 'dump: pg_dump');
$plain->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok(['pg_restore', '-d', $plain->connstr('restored'), $dump], 'dump: pg_restore');
my $rsql = sub { return $plain->safe_psql('restored', $_[0]); };
is($rsql->(q{SELECT string_agg(view || ':' || watched::text || ':' || watch_min_interval::text, ' ' ORDER BY view)
             FROM matviews.status}),
    'public.enabled_users:true:00:00:00 public.via_view:true:00:00:00', 'dump: the watches are restored');
is($rsql->(q{SELECT string_agg(d.view_name || '=' || (SELECT string_agg(r::text, ',' ORDER BY r::text)
                                                      FROM unnest(d.watch_relids) r), ' ' ORDER BY d.view_name)
             FROM matviews.definitions d}),
    'enabled_users=prefs via_view=prefs,prefs_enabled',
    'dump: the watched relations are bound to the restored ones');
is($rsql->(q{SELECT string_agg(tgrelid::regclass::text || ':' || tgfoid::regprocedure::text, ' ')
             FROM pg_trigger WHERE tgname = 'matviews_watch'}),
    'prefs:matviews._on_change()', 'dump: the trigger is restored with its table');
$rsql->(q{UPDATE prefs SET enabled = true});
ok($plain->poll_query_until('restored',
        q{SELECT (SELECT n FROM enabled_users) = 100 AND (SELECT n FROM via_view) = 100}),
    'dump: a write in the restored database is followed by both views');
$plain->stop;

done_testing();
