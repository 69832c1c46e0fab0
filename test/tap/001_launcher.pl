# The launcher: started when matviews is preloaded, visible in pg_stat_activity, survives a
# configuration reload (SIGHUP) as the same process, and comes back after being terminated.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('launcher');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'matviews'");
$node->start;

my $launcher_pid = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews launcher'};

ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity
          WHERE backend_type = 'matviews launcher' AND application_name = 'matviews launcher'}),
    'launcher is running and visible in pg_stat_activity');
my $pid = $node->safe_psql('postgres', $launcher_pid);
ok($pid =~ /^\d+$/, 'launcher has a pid');

# A reload: the launcher rereads its configuration and stays the same process.
my $log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "matviews.launcher_naptime = '1s'");
$node->reload;
ok($node->wait_for_log(qr/matviews launcher: configuration reloaded/, $log_offset),
    'launcher logged the reload');
is($node->safe_psql('postgres', q{SHOW matviews.launcher_naptime}), '1s', 'new setting is in effect');
is($node->safe_psql('postgres', $launcher_pid), $pid, 'launcher survived the reload');

# SIGTERM ends it; the postmaster starts it again.
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres',
        qq{SELECT count(*) = 1 FROM pg_stat_activity
           WHERE backend_type = 'matviews launcher' AND pid <> $pid}),
    'launcher restarted after SIGTERM');

$node->stop;
done_testing();
