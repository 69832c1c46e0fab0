# Hot standby and promotion (SPEC §5): on a streaming replica no matviews process runs and
# nothing about matviews is logged, while the primary's scheduled runs replicate to it; reading
# functions (wait) work there. After promotion the launcher and a scheduler start, the run the old
# primary left running is failed ('server restarted'), and a run still queued executes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
# One job at a time, so a long run keeps a second one queued.
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
matviews.max_workers = 1
});
$primary->start;

$primary->safe_psql('postgres', q{
CREATE EXTENSION matviews;
CREATE TABLE nap (seconds float8 NOT NULL);
INSERT INTO nap VALUES (0);
CREATE FUNCTION nap() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep((SELECT seconds FROM nap))';
CREATE TABLE src (i int);
INSERT INTO src SELECT generate_series(1, 10);
SELECT matviews.create('tick', 'SELECT count(*) AS n FROM src');
SELECT matviews.create('long', 'SELECT count(*) AS n FROM src WHERE (SELECT nap()) = 1');
SELECT matviews.create('queued', 'SELECT count(*) AS n FROM src');
});
ok($primary->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'}),
    'the primary has a scheduler');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
my $standby_log_start = -s $standby->logfile;

# Lines of the standby's log about matviews, other than the statements this test sends.
sub standby_matviews_lines {
    my $log = slurp_file($standby->logfile, $standby_log_start);
    return grep { /matviews/ && !/statement: / } split /\n/, $log;
}

# The primary refreshes on a schedule; the runs replicate, the standby runs nothing itself.
$primary->safe_psql('postgres', q{SELECT matviews.schedule('tick', '1 second')});
ok($standby->poll_query_until('postgres',
        q{SELECT count(*) >= 3 FROM matviews.runs WHERE view = 'public.tick' AND trigger = 'schedule' AND status = 'success'}),
    'scheduled runs of the primary replicate to the standby');
is($standby->safe_psql('postgres', q{SELECT pg_is_in_recovery()}), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres',
        q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'matviews%'}),
    '0', 'no matviews process runs on the standby');
$primary->safe_psql('postgres', q{SELECT matviews.unschedule('tick')});
ok($primary->poll_query_until('postgres',
        q{SELECT count(*) = 0 FROM matviews.runs WHERE status IN ('queued', 'running')}),
    'the schedule stopped');

# A long run holds the primary's only job slot; a second run stays queued behind it.
$primary->safe_psql('postgres', q{UPDATE nap SET seconds = 300});
my $long = $primary->safe_psql('postgres', q{SELECT matviews.enqueue('long')->>'run_id'});
ok($primary->poll_query_until('postgres', qq{
    SELECT count(*) = 1 FROM matviews.runs r JOIN pg_stat_activity a ON a.pid = r.pid
    WHERE r.id = $long AND r.status = 'running' AND a.wait_event = 'PgSleep'}),
    'a long run is running on the primary');
$primary->safe_psql('postgres', q{INSERT INTO src SELECT generate_series(11, 20)});
my $queued = $primary->safe_psql('postgres', q{SELECT matviews.enqueue('queued')->>'run_id'});
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres',
        qq{SELECT string_agg(status, ',' ORDER BY id) FROM matviews.runs WHERE id IN ($long, $queued)}),
    'running,queued', 'the standby sees one run running and one queued');
is($standby->safe_psql('postgres',
        qq{SELECT (w->>'status') || ' ' || (w->>'timed_out') FROM matviews.wait($queued, '200 ms') w}),
    'queued true', 'wait works on the standby and times out');
is($standby->safe_psql('postgres',
        q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'matviews%'}),
    '0', 'still no matviews process on the standby');
my @lines = standby_matviews_lines();
is(scalar(@lines), 0, 'the standby logged nothing about matviews') or diag(join("\n", @lines));

# The primary goes away; the standby is promoted.
$primary->stop('immediate');
my $offset = -s $standby->logfile;
$standby->promote;
ok($standby->poll_query_until('postgres', q{SELECT NOT pg_is_in_recovery()}), 'promoted');
ok($standby->wait_for_log(qr/matviews launcher started/, $offset), 'the launcher started');
ok($standby->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'matviews scheduler' AND datname = 'postgres'}),
    'a scheduler serves the database after promotion');
ok($standby->poll_query_until('postgres',
        qq{SELECT string_agg(status, ',' ORDER BY id) = 'failed,success' FROM matviews.runs WHERE id IN ($long, $queued)}),
    'after promotion the interrupted run is failed and the queued run executed');
is($standby->safe_psql('postgres',
        qq{SELECT (error->>'sqlstate') || ' ' || (error->>'message') FROM matviews.runs WHERE id = $long}),
    '57P01 server restarted', 'the interrupted run says the server restarted');
is($standby->safe_psql('postgres', q{SELECT n FROM queued}), '20', 'the queued refresh brought the new rows');
$standby->safe_psql('postgres', q{UPDATE nap SET seconds = 0});
my $new = $standby->safe_psql('postgres', q{SELECT matviews.enqueue('long')->>'run_id'});
is($standby->safe_psql('postgres', qq{SELECT matviews.wait($new, '60 seconds')->>'status'}),
    'success', 'the promoted server runs new requests');

$standby->stop;
done_testing();
