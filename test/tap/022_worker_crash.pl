# Crash recovery (SPEC §5, §10): kill -9 of a job worker during a scheduled refresh, regular and
# swap. The postmaster restarts the cluster; the run left running is failed with 'server
# restarted'; the view holds the complete old data (no leftover relations); and the scheduler
# carries on with the schedule, so the view later holds the new data.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
restart_after_crash = on
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION matviews;
CREATE TABLE nap (seconds float8 NOT NULL);
INSERT INTO nap VALUES (0);
CREATE FUNCTION nap() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep((SELECT seconds FROM nap))';
CREATE TABLE src (i int);
INSERT INTO src SELECT generate_series(1, 100);
-- The uncorrelated subquery runs once per refresh: one nap, then the rows.
SELECT matviews.create('crash_regular', 'SELECT i FROM src WHERE (SELECT nap()) = 1');
SELECT matviews.create('crash_swap', 'SELECT i FROM src WHERE (SELECT nap()) = 1',
                       refresh_strategy => 'swap');
CREATE INDEX crash_swap_i ON crash_swap (i);
-- A failed run backs off from 1 second, so the schedule resumes soon after the crash.
SELECT matviews.alter('crash_regular', options => '{"retry_delay": "1 second"}');
SELECT matviews.alter('crash_swap', options => '{"retry_delay": "1 second"}');
});

# Waits until the job running $run sleeps in its view's query (it has read its nap).
sub wait_for_nap {
    my ($run) = @_;
    return $node->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM matviews.runs r JOIN pg_stat_activity a ON a.pid = r.pid
        WHERE r.id = $run AND r.status = 'running' AND a.backend_type = 'matviews job'
          AND a.wait_event = 'PgSleep'});
}

# Kills the job refreshing $view during a scheduled run; checks recovery and that the schedule
# goes on.
sub crash_during_scheduled_refresh {
    my ($view, $strategy) = @_;
    sql(q{UPDATE nap SET seconds = 300});
    sql(q{INSERT INTO src SELECT generate_series(1, 100)});
    my $rows_before = sql(qq{SELECT count(*) FROM $view});
    sql(qq{SELECT matviews.schedule('$view', '1 second')});
    ok($node->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM pg_stat_activity
        WHERE backend_type = 'matviews job'
          AND query = 'matviews: refresh public.$view ($strategy)'}),
        "$view: a scheduled $strategy refresh is running");
    my ($run, $pid) = split /\|/, sql(qq{
        SELECT id, pid FROM matviews.runs
        WHERE view = 'public.$view' AND status = 'running' AND trigger = 'schedule'});
    ok($run && $pid, "$view: the running run $run has the job's pid");
    ok(wait_for_nap($run), "$view: the job is inside the view's query");
    # Later runs are quick; the running one has already read its nap.
    sql(q{UPDATE nap SET seconds = 0});

    my $offset = -s $node->logfile;
    kill 'KILL', $pid;
    $node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
    ok($node->poll_query_until('postgres', qq{
        SELECT status = 'failed' FROM matviews.runs WHERE id = $run}),
        "$view: after the restart the interrupted run is failed");
    is(sql(qq{SELECT (error->>'sqlstate') || ' ' || (error->>'message') FROM matviews.runs
              WHERE id = $run}),
        '57P01 server restarted', "$view: its error says the server restarted");
    is(sql(qq{SELECT count(*) FROM $view}), $rows_before, "$view: the old data is intact");
    is(sql(qq{SELECT count(*) FROM pg_class
              WHERE (relname LIKE '$view%' AND relname NOT IN ('$view', 'crash_swap_i'))
                 OR relname ~ '^pg_temp_[0-9]+\$'}),
        '0', "$view: no leftover relations");

    # The scheduler carries on: a later scheduled run succeeds and brings the new data.
    ok($node->poll_query_until('postgres', qq{
        SELECT count(*) > 0 FROM matviews.runs
        WHERE view = 'public.$view' AND trigger = 'schedule' AND status = 'success'
          AND id > $run}),
        "$view: a later scheduled run succeeded");
    is(sql(qq{SELECT count(*) FROM $view}), sql(q{SELECT count(*) FROM src}),
        "$view: the view holds the new data");
    sql(qq{SELECT matviews.unschedule('$view')});
    ok($node->poll_query_until('postgres', qq{
        SELECT count(*) = 0 FROM matviews.runs
        WHERE view = 'public.$view' AND status IN ('queued', 'running')}),
        "$view: nothing left running");
}

crash_during_scheduled_refresh('crash_regular', 'regular');
crash_during_scheduled_refresh('crash_swap', 'swap');
is(sql(q{SELECT count(*) FROM pg_indexes WHERE indexname = 'crash_swap_i'}), '1',
    'the swapped view kept its index');

# Runs still queued at the crash run afterwards. One worker: the second run waits for the first.
my $offset = -s $node->logfile;
sql(q{ALTER SYSTEM SET matviews.max_workers = 1});
sql(q{SELECT pg_reload_conf()});
$node->wait_for_log(qr/matviews scheduler: configuration reloaded/, $offset);
sql(q{UPDATE nap SET seconds = 300});
my $slow = sql(q{SELECT matviews.enqueue('crash_regular')->>'run_id'});
ok(wait_for_nap($slow), 'a queued run is running');
sql(q{UPDATE nap SET seconds = 0});
my $queued = sql(q{SELECT matviews.enqueue('crash_swap')->>'run_id'});
is(sql(qq{SELECT status FROM matviews.runs WHERE id = $queued}), 'queued',
    'another run is queued behind it');
my $pid = sql(qq{SELECT pid FROM matviews.runs WHERE id = $slow});
$offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
ok($node->poll_query_until('postgres', qq{
    SELECT string_agg(status, ',' ORDER BY id) = 'failed,success'
    FROM matviews.runs WHERE id IN ($slow, $queued)}),
    'after the crash the running run is failed and the queued run ran');

ok(!$node->log_contains(qr/terminated by signal (6|11)/), 'no assertion failure or segfault');
$node->stop;
done_testing();
