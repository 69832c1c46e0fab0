# Every database with matviews installed is served, with no configuration: CREATE EXTENSION in a
# new database starts its scheduler, several databases are served at once, a database without
# the extension keeps none, DROP EXTENSION stops it (and it stays stopped until the extension
# comes back), a restart finds them all again, and DROP DATABASE is not blocked by the scheduler.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('databases');
$node->init;
# Only the library: every matviews setting keeps its default.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
});
$node->start;

sub schedulers_in {
    my ($db) = @_;
    return qq{SELECT count(*) FROM pg_stat_activity
              WHERE backend_type = 'matviews scheduler' AND datname = '$db'};
}

# Installs matviews in a new database and shows that a queued refresh runs there.
sub serve_new_database {
    my ($db) = @_;
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    $node->safe_psql($db, q{
        CREATE EXTENSION matviews;
        CREATE TABLE t (i int);
        INSERT INTO t VALUES (1), (2);
        SELECT matviews.create('mv', 'SELECT count(*) AS n FROM t');
        INSERT INTO t VALUES (3);});
    ok($node->poll_query_until('postgres', schedulers_in($db), '1'), "$db has a scheduler");
    check_served($db, 3);
}

# A queued refresh in $db runs and succeeds: the view then counts $n rows.
sub check_served {
    my ($db, $n) = @_;
    my $r = $node->safe_psql($db, q{SELECT matviews.enqueue('mv')->>'run_id'});
    is($node->safe_psql($db, qq{SELECT matviews.wait($r, '60 seconds')->>'status'}), 'success',
        "a queued refresh ran in $db");
    is($node->safe_psql($db, q{SELECT n FROM mv}), $n, "$db: the view was refreshed");
}

ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'matviews launcher'}),
    'launcher running');

serve_new_database('db1');
serve_new_database('db2');
is($node->safe_psql('postgres',
        q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'}),
    '2', 'two databases are served at once');
ok($node->poll_query_until('postgres', schedulers_in('postgres'), '0'),
    'a database without matviews keeps no scheduler');

# DROP EXTENSION: the scheduler exits, and the database is no longer served.
my $offset = -s $node->logfile;
$node->safe_psql('db2', 'DROP EXTENSION matviews CASCADE');
ok($node->poll_query_until('postgres', schedulers_in('db2'), '0'),
    'the scheduler of db2 exits after DROP EXTENSION');
ok($node->wait_for_log(qr/matviews scheduler: extension dropped, exiting/, $offset),
    'it logged why');
# The launcher keeps going (a third database gets served) without restarting db2's scheduler.
serve_new_database('db3');
is($node->safe_psql('postgres', schedulers_in('db2')), '0', 'db2 is still not served');

# CREATE EXTENSION again: served again.
$node->safe_psql('db2', q{
    CREATE EXTENSION matviews;
    SELECT matviews.create('mv', 'SELECT count(*) AS n FROM t');});
ok($node->poll_query_until('postgres', schedulers_in('db2'), '1'),
    'db2 is served again after CREATE EXTENSION');
$node->safe_psql('db2', 'INSERT INTO t VALUES (4)');
check_served('db2', 4);

# A restart finds every database with matviews.
$node->restart;
for my $db (qw(db1 db2 db3)) {
    ok($node->poll_query_until('postgres', schedulers_in($db), '1'), "$db served after restart");
}
$node->safe_psql('db1', 'INSERT INTO t VALUES (4)');
check_served('db1', 4);

# DROP DATABASE does not fail because of the scheduler, or of a job, connected to it.
$node->safe_psql('db3', q{
    CREATE FUNCTION nap() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(300)';
    SELECT matviews.create('slow', 'SELECT 1 AS x WHERE (SELECT nap()) = 1', with_data => false);
    SELECT matviews.enqueue('slow');});
ok($node->poll_query_until('postgres', q{
    SELECT count(*) = 1 FROM pg_stat_activity
    WHERE datname = 'db3' AND backend_type = 'matviews job' AND wait_event = 'PgSleep'}),
    'a long job runs in db3');
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP DATABASE db3');
is($ret, 0, 'DROP DATABASE of a served database with a running job succeeds') or diag($stderr);
ok($node->poll_query_until('postgres', schedulers_in('db3'), '0'), 'no scheduler for db3');
$node->safe_psql('db1', 'INSERT INTO t VALUES (5)');
check_served('db1', 5);

ok(!$node->log_contains(qr/was terminated by signal/), 'no process crashed');
$node->stop;
done_testing();
