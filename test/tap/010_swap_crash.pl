# A swap's backend killed with SIGKILL (SPEC §4, §10): once in the middle of building the new
# relation (its query paused inside REFRESH of <view>_mvswap), once while it retries for the
# exclusive lock behind a long reader. After the server's crash restart the view holds the
# complete old data under its old relation, no temporary relation is left, no run is left
# 'running', and the next swap goes through. A synchronous call's run record belongs to the
# caller's transaction and goes with it; a queued swap killed the same way is recorded as failed
# ('server restarted') by the scheduler after the restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('swap_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
restart_after_crash = on
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION matviews;
CREATE TABLE crash_src (id int PRIMARY KEY, v int);
INSERT INTO crash_src SELECT g, g FROM generate_series(1, 1000) g;
-- While the gate is closed, the view's query announces the relations being built in this
-- transaction and then sleeps: the swap is caught in the middle of its build.
CREATE TABLE crash_gate (closed boolean);
INSERT INTO crash_gate VALUES (false);
CREATE FUNCTION crash_pause() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT closed FROM crash_gate) THEN
        RAISE NOTICE 'paused in backend % building %', pg_backend_pid(),
            (SELECT string_agg(relname, ',') FROM pg_class
             WHERE relname LIKE 'crash_mv%mvswap' AND relkind = 'm');
        PERFORM pg_sleep(600);
    END IF;
    RETURN true;
END $$;
SELECT matviews.create('crash_mv', 'SELECT id, v FROM crash_src WHERE crash_pause()',
                       refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id']);
CREATE INDEX crash_mv_v_idx ON crash_mv (v);
GRANT SELECT ON crash_mv TO PUBLIC;
COMMENT ON MATERIALIZED VIEW crash_mv IS 'survives crashes';
});

# What must survive: the relation, its data, its indexes, privileges and comment.
my $state_query = q{
SELECT c.oid, (SELECT count(*) || ':' || sum(v) FROM crash_mv),
       (SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY 1) FROM pg_index WHERE indrelid = c.oid),
       c.relacl, obj_description(c.oid, 'pg_class')
FROM pg_class c WHERE c.oid = 'crash_mv'::regclass};
my $leftovers = q{SELECT count(*) FROM pg_class WHERE relname LIKE '%mvswap%'};

# Starts "SELECT matviews.swap('crash_mv')" in its own psql, with extra settings.
sub start_swap
{
	my ($settings) = @_;
	my %s = (out => '', err => '');
	$s{timer} = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
	$s{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq', '-d',
			$node->connstr('postgres') . ' application_name=crash_swapper',
			'-c', "$settings SELECT r->>'status' FROM matviews.swap('crash_mv') r"
		],
		'>', \$s{out}, '2>', \$s{err}, $s{timer});
	return \%s;
}

# Kills a backend with SIGKILL and waits for the server to restart and accept connections.
sub crash_backend
{
	my ($pid, $swap) = @_;
	my $log_offset = -s $node->logfile;
	ok(kill('KILL', $pid), "SIGKILL sent to the swapping backend $pid");
	$swap->{h}->finish;
	ok($node->wait_for_log(qr/server process \(PID $pid\) was terminated by signal 9/, $log_offset),
		'the postmaster saw the backend die');
	ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset),
		'the server reinitialized after the crash');
	ok($node->poll_query_until('postgres', 'SELECT true'), 'the server accepts connections again');
}

# Checks what must hold after a crash: the old relation with the old data, nothing left over.
sub check_after_crash
{
	my ($what, $before) = @_;
	is($node->safe_psql('postgres', $state_query), $before,
		"$what: the view is the old relation, with the complete old data, indexes, grants and comment");
	is($node->safe_psql('postgres', $leftovers), '0', "$what: no temporary relation is left");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM matviews.runs WHERE status = 'running'}),
		'0', "$what: no run is left running");
	# A synchronous call's run is recorded in the caller's transaction, like everything the
	# call does: a crash before commit leaves no record, as it leaves no other trace. (Queued
	# and scheduled runs commit 'running' first; see the third case below.)
	is($node->safe_psql('postgres',
			q{SELECT count(*) FROM matviews.runs WHERE operation = 'swap' AND view = 'public.crash_mv'}),
		'0', "$what: the killed call left no run record");
}

my $before = $node->safe_psql('postgres', $state_query);
like($before, qr/^\d+\|1000:500500\|/, 'the view holds the old data');

# New data, and the gate closed: the swap's build will pause.
$node->safe_psql('postgres', q{
UPDATE crash_src SET v = v + 1000000;
INSERT INTO crash_src SELECT g, g FROM generate_series(1001, 1500) g;
UPDATE crash_gate SET closed = true;
});

# 1. Killed in the middle of the build.
my $swap = start_swap('');
ok(pump_until($swap->{h}, $swap->{timer}, \$swap->{err}, qr/paused in backend \d+ building crash_mv_mvswap/),
	'the swap is building crash_mv_mvswap');
my ($pid) = $swap->{err} =~ /paused in backend (\d+)/;
ok( $node->poll_query_until('postgres',
		qq{SELECT query LIKE '%matviews.swap%' AND wait_event = 'PgSleep'
		   FROM pg_stat_activity WHERE pid = $pid}),
	'pg_stat_activity shows the backend inside the swap');
crash_backend($pid, $swap);
check_after_crash('killed while building', $before);

# 2. Killed while it retries for the exclusive lock behind a long reader (the build is done).
$node->safe_psql('postgres', 'UPDATE crash_gate SET closed = false');
my $reader = $node->background_psql('postgres', on_error_stop => 0);
$reader->query_safe('BEGIN');
$reader->query_safe('SELECT count(*) FROM crash_mv');
$swap = start_swap('SET matviews.swap_lock_attempts = 1000;');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE application_name = 'crash_swapper' AND wait_event_type IN ('Extension', 'Lock')}),
	'the swap sleeps between lock attempts');
$pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE application_name = 'crash_swapper'});
crash_backend($pid, $swap);
eval { $reader->quit };    # its backend went down with the crash
check_after_crash('killed while retrying for its lock', $before);

# 3. A queued swap (the worker commits its run as 'running' before it starts) killed in the
# middle of its build: after the restart the scheduler marks that run failed, 'server restarted'.
$node->safe_psql('postgres', 'UPDATE crash_gate SET closed = true');
my $run_id = $node->safe_psql('postgres',
	q{SELECT r->>'run_id' FROM matviews.enqueue('crash_mv', operation => 'swap') r});
ok($node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE backend_type = 'matviews job' AND wait_event = 'PgSleep'
		     AND query LIKE 'matviews: swap public.crash_mv%'}),
	'the job worker is building the queued swap');
is($node->safe_psql('postgres', "SELECT status FROM matviews.runs WHERE id = $run_id"), 'running',
	'the queued swap is recorded as running while it builds');
$pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews job'});
$node->safe_psql('postgres', 'UPDATE crash_gate SET closed = false');  # committed: reopens after the crash too
{
	my $log_offset = -s $node->logfile;
	ok(kill('KILL', $pid), "SIGKILL sent to the job worker $pid");
	ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset),
		'the server reinitialized after the crash');
	ok($node->poll_query_until('postgres', 'SELECT true'), 'the server accepts connections again');
}
ok( $node->poll_query_until('postgres',
		qq{SELECT status || ':' || (error->>'message') FROM matviews.runs WHERE id = $run_id},
		'failed:server restarted'),
	'the killed queued swap is recorded as failed: server restarted');
is($node->safe_psql('postgres', $state_query), $before, 'the view is still the old relation with the old data');
is($node->safe_psql('postgres', $leftovers), '0', 'no temporary relation is left');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'}),
	'the scheduler carries on after the crash');

# The next swap goes through, with the new data, and leaves nothing behind.
is($node->safe_psql('postgres', q{SELECT r->>'status' FROM matviews.swap('crash_mv') r}),
	'updated', 'the next swap succeeds');
like($node->safe_psql('postgres', $state_query), qr/^\d+\|1500:1001125750\|crash_mv_id_key,crash_mv_v_idx\|/,
	'the view now holds the new data, with its indexes');
is($node->safe_psql('postgres', $leftovers), '0', 'no temporary relation after the next swap');
is($node->safe_psql('postgres',
		q{SELECT status FROM matviews.runs WHERE operation = 'swap' ORDER BY id DESC LIMIT 1}),
	'success', 'the next swap is recorded as a success');

# No other process crashed (abort or segmentation fault).
ok(!$node->log_contains(qr/terminated by signal (6|11)/), 'no backend died of signal 6 or 11');

$node->stop;
done_testing();
