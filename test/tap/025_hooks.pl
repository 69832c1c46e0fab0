# The utility hook stops a database's scheduler only for a statement PostgreSQL lets start:
# refused DROP DATABASE, ALTER DATABASE ... RENAME and CREATE DATABASE ... TEMPLATE by a role
# without the rights, the same statements inside a transaction block, and every ALTER DATABASE
# form other than SET TABLESPACE leave the scheduler and its running job alone. The owner's
# statements still go through.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hooks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
CREATE ROLE alice LOGIN CREATEDB;
CREATE ROLE mallory LOGIN;
CREATE ROLE mallory_db LOGIN CREATEDB;
CREATE DATABASE served OWNER alice;
});
$node->safe_psql('served', q{
CREATE EXTENSION matviews;
CREATE FUNCTION nap() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(300)';
SELECT matviews.create('slow', 'SELECT 1 AS x WHERE (SELECT nap()) = 1', with_data => false);
SELECT matviews.enqueue('slow');
});
my $scheduler = q{SELECT pid FROM pg_stat_activity
                  WHERE backend_type = 'matviews scheduler' AND datname = 'served'};
my $job = q{SELECT pid FROM pg_stat_activity
            WHERE backend_type = 'matviews job' AND datname = 'served' AND wait_event = 'PgSleep'};
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($job) j"), 'a long job runs');
my $scheduler_pid = sql($scheduler);
my $job_pid = sql($job);
ok($scheduler_pid, 'the scheduler runs');

# Runs $stmt as $role in postgres; it must fail with $pattern and leave both processes running.
sub refused_leaves_work {
    my ($role, $stmt, $pattern, $what) = @_;
    my ($ret, $out, $err) = $node->psql('postgres', $stmt, extra_params => ['-U', $role]);
    isnt($ret, 0, "$what is refused");
    like($err, $pattern, "$what: PostgreSQL's own error");
    is(sql($scheduler), $scheduler_pid, "$what: the scheduler was not stopped");
    is(sql($job), $job_pid, "$what: the running job was not killed");
}

refused_leaves_work('mallory', 'DROP DATABASE served', qr/must be owner/, 'DROP by a stranger');
refused_leaves_work('mallory_db', 'ALTER DATABASE served RENAME TO taken', qr/must be owner/,
    'RENAME by a stranger with CREATEDB');
refused_leaves_work('mallory', 'CREATE DATABASE copy TEMPLATE served',
    qr/permission denied to create database/, 'CREATE ... TEMPLATE without CREATEDB');
refused_leaves_work('mallory_db', 'CREATE DATABASE copy TEMPLATE served',
    qr/permission denied to copy database/, 'CREATE ... TEMPLATE of a database not owned');
refused_leaves_work('alice', "BEGIN; DROP DATABASE served; COMMIT",
    qr/cannot run inside a transaction block/, 'DROP in a transaction block by the owner');
refused_leaves_work('alice', 'ALTER DATABASE served RENAME TO postgres', qr/already exists/,
    'RENAME to a taken name');
refused_leaves_work('alice', 'ALTER DATABASE served SET TABLESPACE no_such_space',
    qr/does not exist/, 'SET TABLESPACE to a missing tablespace');

# Other ALTER DATABASE forms never need the database alone.
$node->safe_psql('postgres', q{ALTER DATABASE served SET work_mem = '8MB'},
    extra_params => ['-U', 'alice']);
$node->safe_psql('postgres', q{ALTER DATABASE served CONNECTION LIMIT 50},
    extra_params => ['-U', 'alice']);
is(sql($scheduler), $scheduler_pid, 'ALTER DATABASE SET / CONNECTION LIMIT keep the scheduler');
is(sql($job), $job_pid, 'and the job');

# The owner's own statements still get the database to themselves.
my ($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE served RENAME TO renamed',
    extra_params => ['-U', 'alice']);
is($ret, 0, 'the owner renames a served database with a running job') or diag($err);
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE renamed',
    extra_params => ['-U', 'alice']);
is($ret, 0, 'the owner drops it') or diag($err);
ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type LIKE 'matviews %'
          AND backend_type <> 'matviews launcher'}),
    'no scheduler or job is left');

ok(!$node->log_contains(qr/was terminated by signal/), 'no process crashed');
$node->stop;
done_testing();
