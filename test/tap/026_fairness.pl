# Fairness between roles (issue 10), with max_workers = 2: one role's backlog of 20,000 queued
# runs does not delay another role's run (max_workers_per_owner, default 1 here, leaves it a
# worker), and with the per-owner limit raised to 2, when that role's long jobs hold both
# workers, the other role's run takes the first worker that frees, before the backlog's next run.
# Also: an idle scheduler runs no transaction (its wake-ups over a measured window), and one bad
# definition row is skipped and logged once while the others still run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('fairness');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
matviews.max_workers = 2
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION matviews;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
GRANT CREATE ON SCHEMA public TO alice, bob;
CREATE TABLE nap (seconds float8 NOT NULL);
INSERT INTO nap VALUES (3);
GRANT SELECT ON nap TO alice, bob;
CREATE FUNCTION nap() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep((SELECT seconds FROM nap))';
SET ROLE alice;
SELECT matviews.create('a_' || g, 'SELECT nap() AS x') FROM generate_series(1, 4) g;
SET ROLE bob;
SELECT matviews.create('b_1', 'SELECT 1 AS x');
});
ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'}),
    'scheduler running');

# 20,000 queued runs of alice's views (5,000 per view), inserted directly as a superuser; the
# runs_one_queued_request index covers enqueue's requests only, so these are schedule rows.
sql(q{
INSERT INTO matviews.runs (view, relid, definition_id, operation, status, trigger, run_at, role, owner)
SELECT 'public.a_' || (g % 4 + 1), ('public.a_' || (g % 4 + 1))::regclass, d.id, 'refresh', 'queued',
       'schedule', now() - interval '1 hour', 'alice', 'alice'
FROM generate_series(1, 20000) g
JOIN matviews.definitions d ON d.view_name = 'a_' || (g % 4 + 1);
});
# Wake the scheduler: any commit that queues work does.
sql(q{SET ROLE alice; SELECT matviews.enqueue('a_1', run_at => now() + interval '1 day')});
ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM matviews.runs WHERE owner = 'alice' AND status = 'running'}),
    "one of alice's backlog runs is running");
is(sql(q{SELECT count(*) FROM matviews.runs WHERE owner = 'alice' AND status = 'running'}), '1',
    'max_workers_per_owner (default: half of max_workers) keeps alice to one worker');

my $b1 = sql(q{SET ROLE bob; SELECT matviews.enqueue('b_1')->>'run_id'});
my $alice_running = sql(q{SELECT id FROM matviews.runs WHERE owner = 'alice' AND status = 'running'});
is(sql(qq{SELECT matviews.wait($b1, '60 seconds')->>'status'}), 'success', "bob's run succeeds");
is(sql(qq{SELECT status FROM matviews.runs WHERE id = $alice_running}), 'running',
    "bob's run ran while alice's job was still running: not delayed by her backlog");

# max_workers_per_owner = 2: alice's long jobs take both workers; bob's run takes the first one
# that frees, before alice's next.
sql(q{ALTER SYSTEM SET matviews.max_workers_per_owner = 2});
my $offset = -s $node->logfile;
sql(q{SELECT pg_reload_conf()});
ok($node->wait_for_log(qr/matviews scheduler: configuration reloaded/, $offset), 'reloaded');
ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 2 FROM matviews.runs WHERE owner = 'alice' AND status = 'running'}),
    'alice now has both workers');
my $b2 = sql(q{SET ROLE bob; SELECT matviews.enqueue('b_1')->>'run_id'});
is(sql(qq{SELECT matviews.wait($b2, '60 seconds')->>'status'}), 'success', "bob's second run succeeds");
is(sql(qq{
    SELECT count(*) FROM matviews.runs a, matviews.runs b
    WHERE b.id = $b2 AND a.owner = 'alice' AND a.id <> $alice_running
      AND a.started_at > b.run_at AND a.started_at < b.started_at}),
    '0', "no run of alice's backlog started between bob's enqueue and his start");
is(sql(qq{
    SELECT b.started_at <= (SELECT min(finished_at) FROM matviews.runs a
                            WHERE a.owner = 'alice' AND a.finished_at > b.run_at)
                           + interval '1 second'
    FROM matviews.runs b WHERE b.id = $b2}),
    't', "bob's run started when the first of alice's jobs ended: at most one job's duration");

# End the backlog.
sql(q{UPDATE matviews.runs SET status = 'cancelled' WHERE status = 'queued' AND owner = 'alice'});
ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 0 FROM matviews.runs WHERE status = 'running'}), 'backlog drained');

# One bad definition row (retry_delay that is no interval): skipped and logged once; the other
# views' schedules still run.
sql(q{UPDATE nap SET seconds = 0});
$offset = -s $node->logfile;
sql(q{UPDATE matviews.definitions SET schedule = '1 second', options = '{"retry_delay": "bogus"}'
      WHERE view_name = 'a_2'});
sql(q{SET ROLE bob; SELECT matviews.schedule('b_1', '1 second')});
ok($node->poll_query_until('postgres', q{
    SELECT count(*) >= 3 FROM matviews.runs WHERE view = 'public.b_1' AND trigger = 'schedule'
       AND status = 'success'}),
    "bob's schedule runs despite alice's bad row");
sql(q{SET ROLE bob; SELECT matviews.schedule('b_1', '2 seconds')});  # another reload
ok($node->poll_query_until('postgres', q{
    SELECT count(*) >= 5 FROM matviews.runs WHERE view = 'public.b_1' AND trigger = 'schedule'
       AND status = 'success'}), 'and keeps running');
my $log = slurp_file($node->logfile, $offset);
my $warnings = () = $log =~ /skipping the schedule of public\.a_2/g;
is($warnings, 1, 'the bad row is logged once, not at every reload');
sql(q{SET ROLE bob; SELECT matviews.unschedule('b_1')});
sql(q{UPDATE matviews.definitions SET schedule = NULL, options = '{}' WHERE view_name = 'a_2'});

# An idle scheduler sleeps: over 5 s with nothing due it wakes at most for its slow check
# (scheduler_naptime, 10 s), where it used to run a transaction every second.
my $pid = sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'});
sub wakeups {
    my $status = slurp_file("/proc/$pid/status");
    my ($n) = $status =~ /^voluntary_ctxt_switches:\s+(\d+)/m;
    return $n;
}
ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 0 FROM matviews.runs WHERE status IN ('queued', 'running')
          AND (run_at IS NULL OR run_at < now() + interval '1 hour')}),
    'nothing due');
my $before = wakeups();
sleep 5;    # the measurement window itself, not a wait for a condition
my $after = wakeups();
cmp_ok($after - $before, '<=', 2, "idle scheduler woke at most twice in 5 s (woke " . ($after - $before) . ")");

ok(!$node->log_contains(qr/was terminated by signal|server process .* exited with exit code [^01]/),
    'no process crashed');
$node->stop;
done_testing();
