# Without shared_preload_libraries (SPEC §1): the background functions still record the request
# and say in response.warning that no worker runs; nothing runs. Once the library is preloaded
# and the server restarted, the recorded requests are served.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION matviews;
CREATE TABLE t (i int);
INSERT INTO t VALUES (1);
SELECT matviews.create('mv', 'SELECT count(*) AS n FROM t');
INSERT INTO t VALUES (2);
});

my ($status, $run, $warning) = split /\|/, sql(q{
    SELECT r->>'status', r->>'run_id', r->'response'->>'warning' FROM matviews.enqueue('mv') r});
is($status, 'queued', 'enqueue records the request');
like($warning, qr/no matviews worker is running.*shared_preload_libraries/,
    'enqueue warns that no worker runs');
is(sql(qq{SELECT status FROM matviews.runs WHERE id = $run}), 'queued', 'the run is recorded');

my ($s_status, $s_warning) = split /\|/, sql(q{
    SELECT r->>'status', r->'response'->>'warning' FROM matviews.schedule('mv', '1 hour') r});
is($s_status, 'updated', 'schedule records the schedule');
like($s_warning, qr/shared_preload_libraries/, 'schedule warns too');
is(sql(q{SELECT schedule FROM matviews.status WHERE view = 'public.mv'}), '1 hour',
    'the schedule is recorded');

is(sql(qq{SELECT (w->>'status') || ' ' || (w->>'timed_out') FROM matviews.wait($run, '200 ms') w}),
    'queued true', 'wait times out: nothing runs the request');
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'matviews%'}), '0',
    'no matviews process');
is(sql(q{SELECT n FROM mv}), '1', 'the view was not refreshed');

# Preloaded after a restart: the recorded request runs.
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'matviews'");
$node->restart;
is(sql(qq{SELECT matviews.wait($run, '60 seconds')->>'status'}), 'success',
    'the recorded request runs once the worker is preloaded');
is(sql(q{SELECT n FROM mv}), '2', 'the view was refreshed');
ok($node->poll_query_until('postgres',
        q{SELECT next_run_at IS NOT NULL FROM matviews.status WHERE view = 'public.mv'}),
    'the recorded schedule is served');
is(sql(q{SELECT matviews.enqueue('mv')->'response' ? 'warning'}), 'f',
    'no warning once the worker runs');

$node->stop;
done_testing();
