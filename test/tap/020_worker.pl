# The scheduler's settings and signals: SIGHUP rereads matviews.max_workers (one job at a time,
# then two), matviews.timezone (cron next_run_at follows the zone) and matviews.runs_retention
# (finished runs are pruned, queued ones kept); SIGTERM of a job worker ends its job cleanly (the
# run is failed, the scheduler carries on).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Waits until the scheduler has reread its configuration after a reload.
sub reload_and_wait {
    my $offset = -s $node->logfile;
    sql(q{SELECT pg_reload_conf()});
    ok($node->wait_for_log(qr/matviews scheduler: configuration reloaded/, $offset),
        "scheduler reloaded: $_[0]");
}

sql(q{
CREATE EXTENSION matviews;
CREATE TABLE nap (seconds float8 NOT NULL);
INSERT INTO nap VALUES (0);
CREATE FUNCTION nap() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep((SELECT seconds FROM nap))';
SELECT matviews.create('slow_a', 'SELECT nap() AS x');
SELECT matviews.create('slow_b', 'SELECT nap() AS x');
});
ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'}),
    'scheduler running');
my $scheduler_pid = sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'});

# Enqueues both slow views in one transaction; returns their run ids.
sub enqueue_both {
    my $ids = sql(q{
        BEGIN;
        SELECT (matviews.enqueue('slow_a')->>'run_id') || ',' || (matviews.enqueue('slow_b')->>'run_id');
        COMMIT;});
    return split /,/, $ids;
}

# max_workers = 1: the two runs take turns.
sql(q{ALTER SYSTEM SET matviews.max_workers = 1});
reload_and_wait('max_workers = 1');
sql(q{UPDATE nap SET seconds = 1});
my ($a1, $b1) = enqueue_both();
is(sql(qq{SELECT matviews.wait($a1)->>'status' || ' ' || (matviews.wait($b1)->>'status')}),
    'success success', 'both runs succeeded with one worker');
is(sql(qq{
    SELECT (SELECT max(started_at) FROM matviews.runs WHERE id IN ($a1, $b1))
        >= (SELECT min(finished_at) FROM matviews.runs WHERE id IN ($a1, $b1))}),
    't', 'with max_workers = 1 the second run started after the first finished');

# max_workers = 2: they run at the same time.
sql(q{ALTER SYSTEM SET matviews.max_workers = 2});
sql(q{ALTER SYSTEM SET matviews.max_workers_per_owner = 2});  # both views are one role's
reload_and_wait('max_workers = 2');
sql(q{UPDATE nap SET seconds = 4});
my ($a2, $b2) = enqueue_both();
ok($node->poll_query_until('postgres',
        qq{SELECT count(*) = 2 FROM matviews.runs WHERE id IN ($a2, $b2) AND status = 'running'}),
    'with max_workers = 2 both runs are running at once');
is(sql(qq{SELECT matviews.wait($a2)->>'status' || ' ' || (matviews.wait($b2)->>'status')}),
    'success success', 'both runs succeeded with two workers');

# SIGTERM of a job worker: its run is failed, the scheduler carries on.
sql(q{UPDATE nap SET seconds = 300});
my $long = sql(q{SELECT matviews.enqueue('slow_a')->>'run_id'});
ok($node->poll_query_until('postgres', q{
    SELECT count(*) = 1 FROM pg_stat_activity
    WHERE backend_type = 'matviews job' AND application_name = 'matviews job'
      AND query = 'matviews: refresh public.slow_a (regular)'}),
    'the job shows its action in pg_stat_activity');
my $job_pid = sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews job'});
my $offset = -s $node->logfile;
sql(qq{SELECT pg_terminate_backend($job_pid)});
is(sql(qq{
    SELECT w->>'status' || ' ' || (w->'error'->>'sqlstate') || ' ' || (w->'error'->>'message')
    FROM matviews.wait($long, '60 seconds') w}),
    'failed 57P01 the job worker was terminated', 'the terminated run is failed');
ok($node->wait_for_log(qr/terminating background worker "matviews job" due to administrator command/,
        $offset), 'the job ended on SIGTERM');
sql(q{UPDATE nap SET seconds = 0});
my $after = sql(q{SELECT matviews.enqueue('slow_a')->>'run_id'});
is(sql(qq{SELECT matviews.wait($after)->>'status'}), 'success', 'the next run succeeds');
is(sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'}),
    $scheduler_pid, 'the same scheduler carried on');
is(sql(q{SELECT consecutive_failures FROM matviews.status WHERE view = 'public.slow_a'}), '0',
    'a success after the failure resets consecutive_failures');

# matviews.timezone: a cron schedule's next_run_at follows the zone (wall-clock 04:30).
sql(q{SELECT matviews.create('cron_mv', 'SELECT 1 AS x')});
sql(q{SELECT matviews.schedule('cron_mv', '30 4 * * *')});
my $expected = q{
    WITH t AS (SELECT date_trunc('day', now() AT TIME ZONE '%1$s') + interval '4 hours 30 minutes' AS tick)
    SELECT s.next_run_at = (CASE WHEN t.tick > now() AT TIME ZONE '%1$s' THEN t.tick
                                 ELSE t.tick + interval '1 day' END) AT TIME ZONE '%1$s'
    FROM matviews.status s, t WHERE s.view = 'public.cron_mv'};
ok($node->poll_query_until('postgres', sprintf($expected, 'UTC')),
    'next_run_at is the next 04:30 UTC');
sql(q{ALTER SYSTEM SET matviews.timezone = 'America/New_York'});
reload_and_wait('timezone');
ok($node->poll_query_until('postgres', sprintf($expected, 'America/New_York')),
    'after the reload next_run_at is the next 04:30 in New York');
is(sql(q{SELECT r->'response'->>'timezone' FROM matviews.schedule('cron_mv', '45 4 * * *') r}),
    'America/New_York', 'schedule reports the time zone of cron schedules');
sql(q{SELECT matviews.unschedule('cron_mv')});
sql(q{ALTER SYSTEM RESET matviews.timezone});

# matviews.runs_retention: finished runs older than it are pruned soon after the reload; a
# queued run is kept.
my $last = sql(q{SELECT max(id) FROM matviews.runs});
my $queued = sql(q{SELECT matviews.enqueue('slow_b', run_at => now() + interval '1 day')->>'run_id'});
sql(q{ALTER SYSTEM SET matviews.runs_retention = '2s'});
reload_and_wait('runs_retention');
ok($node->poll_query_until('postgres',
        qq{SELECT count(*) = 0 FROM matviews.runs WHERE id <= $last}),
    'finished runs older than runs_retention are pruned');
is(sql(qq{SELECT status FROM matviews.runs WHERE id = $queued}), 'queued', 'the queued run is kept');
sql(q{ALTER SYSTEM RESET matviews.runs_retention});
reload_and_wait('runs_retention reset');

ok(!$node->log_contains(qr/was terminated by signal|server process .* exited with exit code [^01]/),
    'no process crashed');
$node->stop;
done_testing();
