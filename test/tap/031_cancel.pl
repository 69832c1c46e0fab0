# Cancelling a running swap: matviews.cancel, or pg_cancel_backend of the job, stops the build;
# the job rolls it back, so the view keeps its relation, rows, dependents and readers, no
# temporary relation is left, and the run is recorded as cancelled. The scheduler carries on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cancel');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE EXTENSION matviews;
CREATE TABLE nap (seconds float8 NOT NULL);
INSERT INTO nap VALUES (0);
CREATE FUNCTION nap() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep((SELECT seconds FROM nap))';
CREATE TABLE src AS SELECT g AS id FROM generate_series(1, 1000) g;
SELECT matviews.create('mv', 'SELECT id, nap() AS n FROM src', refresh_strategy => 'swap');
CREATE VIEW mv_dependent AS SELECT count(*) AS n FROM mv;
UPDATE nap SET seconds = 300;
INSERT INTO src SELECT g FROM generate_series(1001, 1100) g;
});
my $oid = sql(q{SELECT 'mv'::regclass::oid});

# Starts a queued swap and waits until its job is inside the build's query.
sub start_swap {
    my $run = sql(q{SELECT matviews.enqueue('mv', operation => 'swap')->>'run_id'});
    ok($node->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM pg_stat_activity a JOIN matviews.runs r ON r.pid = a.pid
        WHERE r.id = $run AND r.status = 'running' AND a.wait_event = 'PgSleep'}),
        "run $run: the swap is building");
    return $run;
}

# The view after a cancelled swap: the same relation, its rows, its dependent, no leftovers.
sub untouched {
    my ($what) = @_;
    is(sql(q{SELECT 'mv'::regclass::oid}), $oid, "$what: the view is the same relation");
    is(sql(q{SELECT n FROM mv_dependent}), '1000', "$what: its rows and its dependent are kept");
    is(sql(q{SELECT count(*) FROM pg_class WHERE relname LIKE 'mv%' AND relname NOT IN ('mv', 'mv_dependent')}),
        '0', "$what: no temporary relation is left");
}

# A reader holds the view while the swap builds: the cancel must not wait for it.
my $reader = $node->background_psql('postgres');
$reader->query_safe(q{BEGIN; SELECT count(*) FROM mv;});

my $run = start_swap();
is(sql(qq{SELECT matviews.cancel($run)->>'status'}), 'cancelled', 'matviews.cancel answers cancelled');
is(sql(qq{SELECT status || ' ' || (error->>'sqlstate') FROM matviews.runs WHERE id = $run}),
    'cancelled 57014', 'the run is recorded as cancelled');
untouched('matviews.cancel');

$run = start_swap();
sql(qq{SELECT pg_cancel_backend(pid) FROM matviews.runs WHERE id = $run});
ok($node->poll_query_until('postgres', qq{SELECT status = 'cancelled' FROM matviews.runs WHERE id = $run}),
    'pg_cancel_backend of the job: the run is cancelled');
untouched('pg_cancel_backend');

$reader->query_safe('COMMIT');
$reader->quit;

# matviews.job_lock_timeout: a job waiting for a lock a reader holds fails after it (55P03),
# instead of waiting forever.
my $offset = -s $node->logfile;
sql(q{ALTER SYSTEM SET matviews.job_lock_timeout = '300ms'; SELECT pg_reload_conf();});
ok($node->wait_for_log(qr/matviews scheduler: configuration reloaded/, $offset), 'scheduler reloaded');
sql(q{UPDATE nap SET seconds = 0});
$reader = $node->background_psql('postgres');
$reader->query_safe(q{BEGIN; SELECT count(*) FROM mv;});
$run = sql(q{SELECT matviews.enqueue('mv', strategy => 'regular')->>'run_id'});
is(sql(qq{SELECT r->>'status' || ' ' || (r->'error'->>'sqlstate') FROM matviews.wait($run, '60 seconds') r}),
    'failed 55P03', 'a job blocked on a lock fails after matviews.job_lock_timeout');
$reader->query_safe('COMMIT');
$reader->quit;

# The scheduler carries on: the next swap succeeds.
sql(q{UPDATE nap SET seconds = 0});
$run = sql(q{SELECT matviews.enqueue('mv', operation => 'swap')->>'run_id'});
is(sql(qq{SELECT matviews.wait($run, '60 seconds')->>'status'}), 'success', 'the next swap succeeds');
is(sql(q{SELECT n FROM mv_dependent}), '1100', 'and the view has the new rows');

ok(!$node->log_contains(qr/was terminated by signal/), 'no process crashed');
$node->stop;
done_testing();
