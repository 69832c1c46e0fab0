# A swap against readers with the default lock settings (matviews.swap_lock_timeout = 100 ms),
# SPEC §4: a long-running reader holds the view in an open transaction while a swap waits for its
# exclusive lock. The swap gives up its place in the lock queue after each short attempt, so 30
# point reads from a third session each complete in well under 2 s (they wait at most one
# attempt), measured, not slept. When the long reader commits, the swap reports success. With
# few attempts the swap gives up instead: 55P03, the old view and its data intact, the run
# recorded as failed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('swap_readers');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'matviews'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION matviews;
CREATE TABLE readers_src (id int PRIMARY KEY, v int);
INSERT INTO readers_src SELECT g, g FROM generate_series(1, 10000) g;
SELECT matviews.create('readers_mv', 'SELECT id, v FROM readers_src',
                       refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id']);
UPDATE readers_src SET v = -v;
});
is($node->safe_psql('postgres', 'SHOW matviews.swap_lock_timeout'), '100ms',
	'the default lock timeout of a swap attempt is in effect');
my $old_oid = $node->safe_psql('postgres', q{SELECT 'readers_mv'::regclass::oid});

# Starts a swap in its own psql (application_name readers_swapper), with extra settings.
sub start_swap
{
	my ($settings) = @_;
	my %s = (out => '', err => '');
	$s{timer} = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
	$s{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq', '-d',
			$node->connstr('postgres') . ' application_name=readers_swapper',
			'-c',
			"$settings SELECT r->>'status', r->'response'->>'lock_attempts', "
			  . "r->'error'->>'sqlstate' FROM matviews.swap('readers_mv') r"
		],
		'>', \$s{out}, '2>', \$s{err}, $s{timer});
	return \%s;
}

# 30 point reads from a session of their own; returns the slowest, in seconds.
sub point_reads
{
	my ($session) = @_;
	my $slowest = 0;
	for my $i (1 .. 30)
	{
		my $id = $i * 311;
		my $t0 = time;
		my $v = $session->query_safe("SELECT v FROM readers_mv WHERE id = $id");
		my $elapsed = time - $t0;
		$slowest = $elapsed if $elapsed > $slowest;
		is($v, $id, "point read $i served from the old view") if $i == 1 || $i == 30;
		cmp_ok($elapsed, '<', 2, "point read $i completed in under 2 s");
	}
	return $slowest;
}

# The long reader: an open transaction that has read the view.
my $long = $node->background_psql('postgres');
$long->query_safe('BEGIN');
is($long->query_safe('SELECT count(*) FROM readers_mv'), '10000', 'the long reader holds the view');

# 1. The swap waits for the long reader without making the other readers queue.
my $swap = start_swap('SET matviews.swap_lock_attempts = 1000;');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE application_name = 'readers_swapper' AND wait_event_type IN ('Extension', 'Lock')}),
	'the swap has failed an attempt and backs off');
my $reader = $node->background_psql('postgres');
my $slowest = point_reads($reader);
note(sprintf('slowest point read during the swap: %.1f ms', $slowest * 1000));
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE application_name = 'readers_swapper' AND state = 'active'}),
	'the swap is still trying while the long reader holds the view');
is($swap->{out}, '', 'the swap has not finished');

$long->query_safe('COMMIT');
$swap->{h}->finish;
my ($status, $attempts, $sqlstate) = split /\|/, $swap->{out} =~ s/\s+$//r, -1;
is($status, 'updated', 'once the long reader ended, the swap succeeded');
cmp_ok($attempts, '>', 1, 'the swap took several attempts');
is($swap->{err}, '', 'the swap printed no error');
is($reader->query_safe('SELECT v FROM readers_mv WHERE id = 311'), '-311',
	'readers now see the new data');
isnt($node->safe_psql('postgres', q{SELECT 'readers_mv'::regclass::oid}), $old_oid,
	'under a new relation');

# 2. With few attempts the swap gives up cleanly while the long reader holds the view.
$old_oid = $node->safe_psql('postgres', q{SELECT 'readers_mv'::regclass::oid});
$node->safe_psql('postgres', 'UPDATE readers_src SET v = v * 1000');
$long->query_safe('BEGIN');
is($long->query_safe('SELECT count(*) FROM readers_mv'), '10000', 'a long reader holds the view again');
$swap = start_swap('SET matviews.swap_lock_attempts = 3;');
$swap->{h}->finish;
($status, $attempts, $sqlstate) = split /\|/, $swap->{out} =~ s/\s+$//r, -1;
is($status,   'error', 'the swap gave up');
is($sqlstate, '55P03', 'with SQLSTATE 55P03 (lock not available)');
is($attempts, '3',     'after matviews.swap_lock_attempts attempts');
is($node->safe_psql('postgres', q{SELECT 'readers_mv'::regclass::oid}), $old_oid,
	'the old relation is still the view');
is($reader->query_safe('SELECT v FROM readers_mv WHERE id = 311'), '-311', 'with its old data');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname LIKE '%mvswap%'}),
	'0', 'no temporary relation is left');
is( $node->safe_psql('postgres',
		q{SELECT status || ':' || (error->>'sqlstate') FROM matviews.runs
		  WHERE operation = 'swap' ORDER BY id DESC LIMIT 1}),
	'failed:55P03',
	'the run is recorded as failed');
is($long->query_safe('SELECT count(*) FROM readers_mv'), '10000', 'the long reader went on undisturbed');
$long->query_safe('COMMIT');

$long->quit;
$reader->quit;
$node->stop;
done_testing();
