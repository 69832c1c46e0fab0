# Incremental refresh across crashes, and on a streaming standby. A primary with the library
# preloaded, and a standby streaming from it from the start (it replays through every crash).
#  1. Crash during capture: a session's large UPDATE (12000 rows) has written its rows to
#     matviews.changes, uncommitted, when its backend is killed with SIGKILL (the postmaster
#     restarts every process).
#     After recovery the update is gone from the table and from the log, and the next refresh is
#     incremental, with nothing to take in; the views equal their queries.
#  2. Crash during an incremental refresh: committed changes, then a session refreshes both views
#     incrementally and is still in its transaction when the whole server is killed with SIGKILL.
#     After the restart the views hold their old rows (the refresh went with its transaction), no
#     run is left running, and the next refresh takes the changes in: the views equal their
#     queries.
#  3. Crash right after a committed incremental refresh (server killed with SIGKILL): the refresh's
#     changes to the view's heap and index survive crash recovery; a further change and refresh is
#     incremental and correct. Index consistency is verified with amcheck when it is available.
#  4. Standby: after incremental refreshes on the primary (no fallback), the standby, caught up,
#     holds views equal to their queries (heap and index changes made through the table AM
#     replicate), read through their unique indexes too; matviews.refresh on the standby fails
#     cleanly (read-only, 25006) and changes nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time usleep);

my $started = time();
my $json = JSON::PP->new;

my $node = PostgreSQL::Test::Cluster->new('inc_crash');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
restart_after_crash = on
matviews.incremental_max_fraction = 1
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

my %query = (
    inc_agg => q{SELECT o.cust, count(*) AS n, sum(o.amount) AS total, max(o.amount) AS hi FROM orders o GROUP BY o.cust},
    inc_join => q{SELECT o.id, o.amount, c.region FROM orders o JOIN custs c ON c.id = o.cust WHERE o.status <> 'void'},
);
my %key = (inc_agg => 'cust', inc_join => 'id');
my @views = sort keys %query;

my $amcheck = sql(q{SELECT count(*) FROM pg_available_extensions WHERE name = 'amcheck'}) eq '1';
sql(q{CREATE EXTENSION matviews});
sql(q{CREATE EXTENSION amcheck}) if $amcheck;
sql(q{
CREATE TABLE custs (id int PRIMARY KEY, region text);
INSERT INTO custs SELECT g, (ARRAY['north', 'south', 'east', NULL])[1 + g % 4] FROM generate_series(1, 60) g;
CREATE TABLE orders (id int PRIMARY KEY, cust int, amount numeric(10,2), status text);
INSERT INTO orders SELECT g, 1 + g % 60, (g * 7919 % 50000) / 100.0, (ARRAY['open', 'closed', 'void'])[1 + g % 3]
  FROM generate_series(1, 12000) g;
});
for my $v (@views) {
    is(sql(qq{SELECT matviews.create('$v', \$q\$$query{$v}\$q\$, refresh_strategy => 'incremental',
                                     unique_index_columns => ARRAY['$key{$v}'])->>'status'}),
        'created', "$v created");
}

sub refresh {
    my ($n, $v) = @_;
    return $json->decode($n->safe_psql('postgres', qq{SELECT matviews.refresh('$v')}));
}

sub diff_sql {
    my ($v) = @_;
    my $q = $query{$v};
    return qq{SELECT (SELECT count(*) FROM (SELECT * FROM $v EXCEPT ALL SELECT * FROM ($q) q) a) || ' '
                  || (SELECT count(*) FROM (SELECT * FROM ($q) q EXCEPT ALL SELECT * FROM $v) b)};
}

# Each view equals its query on $n; read once by a sequential scan, once through its unique index;
# and amcheck finds its unique index consistent with its heap.
sub check_views {
    my ($n, $what) = @_;
    for my $v (@views) {
        is($n->safe_psql('postgres', diff_sql($v)), '0 0', "$what: $v equals its query");
        my $q = $query{$v};
        my $k = $key{$v};
        is($n->safe_psql('postgres', qq{
            SET enable_seqscan = off; SET enable_bitmapscan = off;
            SELECT (SELECT count(*) FROM ($q) q) = count(*) AND bool_and(v IS NOT DISTINCT FROM q)
            FROM $v v LEFT JOIN ($q) q ON q.$k = v.$k}),
            't', "$what: $v read through its unique index equals its query");
        if ($amcheck) {
            is($n->safe_psql('postgres', qq{
                SELECT count(*) FROM (SELECT bt_index_check(indexrelid, true) FROM pg_index
                                      WHERE indrelid = '$v'::regclass AND indisunique) c}),
                '1', "$what: amcheck finds the index of $v consistent with its heap (every heap row in it)");
        }
    }
}

sub view_image {
    my ($v) = @_;
    return sql(qq{SELECT md5(string_agg(v::text, ',' ORDER BY v.$key{$v})) FROM $v v});
}

# The processes of the server now (backends, auxiliary processes, background workers).
sub server_pids {
    my @pids = split /\n/, sql(q{SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()});
    push @pids, $1 if slurp_file($node->data_dir . '/postmaster.pid') =~ /^(\d+)/;
    return @pids;
}

# Kills the postmaster with SIGKILL, waits until every process of the server has ended (the
# others notice the postmaster's death), starts the server again.
sub crash_server {
    my ($what) = @_;
    my @pids = server_pids();
    $node->kill9;
    my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
    my @alive;
    while (time() < $deadline) {
        @alive = grep { kill(0, $_) } @pids;
        last if !@alive;
        usleep(50_000);
    }
    is(join(' ', @alive), '', "$what: every server process ended after the postmaster was killed")
      or BAIL_OUT("processes of the killed server are still running: @alive");
    $node->start;
    ok($node->poll_query_until('postgres', 'SELECT true'), "$what: the server runs again");
}

# A backend killed with SIGKILL: the postmaster restarts every process.
sub crash_backend {
    my ($what, $pid) = @_;
    my $offset = -s $node->logfile;
    ok(kill('KILL', $pid), "$what: SIGKILL sent to backend $pid");
    ok($node->wait_for_log(qr/server process \(PID $pid\) was terminated by signal 9/, $offset),
        "$what: the postmaster saw the backend die");
    ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset),
        "$what: the server reinitialized");
    ok($node->poll_query_until('postgres', 'SELECT true'), "$what: the server accepts connections again");
}

for my $v (@views) {
    my $r = refresh($node, $v);
    is($r->{status} . ' ' . ($r->{response}{fallback} // '-'), 'updated first refresh', "$v: the first refresh is full");
}

# The standby, from a backup taken now; it streams through every crash below.
$node->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('inc_crash_standby');
$standby->init_from_backup($node, 'backup', has_streaming => 1);
$standby->append_conf('postgresql.conf', "wal_retrieve_retry_interval = '100ms'\n");
$standby->start;

############################################################################################
# 1. Crash during capture.

{
    my $what = 'crash during capture';
    my $bg = $node->background_psql('postgres');
    my $pid = $bg->query_safe('SELECT pg_backend_pid()');
    $bg->query_safe('BEGIN');
    $bg->query_safe(q{UPDATE orders SET amount = amount + 1000, cust = 1 + cust % 7, status = 'open'});
    is($bg->query_safe(q{SELECT sum(jsonb_array_length(old_rows) + jsonb_array_length(new_rows))
                         FROM matviews.changes WHERE relid = 'orders'::regclass}),
        '24000', "$what: the uncommitted UPDATE's 12000 old and new rows are in matviews.changes");
    crash_backend($what, $pid);
    eval { $bg->quit };
    is(sql(q{SELECT count(*) FROM orders WHERE amount >= 1000}), '0', "$what: the update is not in the table");
    is(sql(q{SELECT count(*) FROM matviews.changes}), '0', "$what: nor in matviews.changes");
    for my $v (@views) {
        my $r = refresh($node, $v);
        is($r->{status} . ' ' . ($r->{response}{fallback} // 'incremental') . ' ' . ($r->{response}{incremental}{changes} // '?'),
            'updated incremental 0', "$what: $v refreshes incrementally with no change to take in");
    }
    check_views($node, $what);
    sql(q{UPDATE orders SET amount = amount + 1 WHERE id <= 20; UPDATE custs SET region = 'west' WHERE id = 3});
    for my $v (@views) {
        my $r = refresh($node, $v);
        ok($r->{status} eq 'updated' && !defined $r->{response}{fallback} && $r->{response}{incremental}{keys} > 0,
            "$what: after the restart, a committed change is refreshed into $v incrementally")
          or diag($json->encode($r));
    }
    check_views($node, "$what, then a change");
}

############################################################################################
# 2. Crash during an incremental refresh (its transaction still open).

{
    my $what = 'crash during a refresh';
    # One statement of more rows than the capture writes in one log row.
    sql(q{
UPDATE orders SET amount = amount + 0.01;
UPDATE orders SET amount = amount + 2 WHERE id % 10 = 0;
UPDATE orders SET cust = 1 + (cust + 5) % 60, status = 'void' WHERE id % 37 = 0;
DELETE FROM orders WHERE id % 97 = 0;
INSERT INTO orders SELECT g, 1 + g % 60, g % 500, 'open' FROM generate_series(20001, 20100) g;
UPDATE custs SET region = 'south' WHERE id % 5 = 0;
});
    my %before = map { $_ => view_image($_) } @views;
    my $bg = $node->background_psql('postgres');
    $bg->query_safe('BEGIN');
    for my $v (@views) {
        my $r = $json->decode($bg->query_safe(qq{SELECT matviews.refresh('$v')}));
        ok($r->{status} eq 'updated' && !defined $r->{response}{fallback} && $r->{response}{incremental}{keys} > 0,
            "$what: $v was refreshed incrementally in the open transaction")
          or diag($json->encode($r));
    }
    crash_server($what);
    eval { $bg->quit };
    for my $v (@views) {
        is(view_image($v), $before{$v}, "$what: $v holds its rows from before the uncommitted refresh");
    }
    is(sql(q{SELECT count(*) FROM matviews.runs WHERE status = 'running'}), '0', "$what: no run is left running");
    for my $v (@views) {
        my $r = refresh($node, $v);
        is($r->{status}, 'updated', "$what: $v refreshes after the restart");
        note("$what: the refresh of $v after the restart: "
            . ($r->{response}{fallback} ? "full ($r->{response}{fallback})" : 'incremental, ' . $json->encode($r->{response}{incremental})));
    }
    check_views($node, "$what, after the restart");
}

############################################################################################
# 3. Crash right after a committed incremental refresh.

{
    my $what = 'crash after a refresh';
    sql(q{
UPDATE orders SET amount = amount * 2 WHERE id % 13 = 0;
DELETE FROM orders WHERE id BETWEEN 100 AND 150;
INSERT INTO orders SELECT g, 1 + g % 60, g % 700, 'closed' FROM generate_series(21001, 21050) g;
UPDATE custs SET region = NULL WHERE id % 7 = 0;
});
    my %after;
    for my $v (@views) {
        my $r = refresh($node, $v);
        ok($r->{status} eq 'updated' && !defined $r->{response}{fallback} && $r->{response}{incremental}{keys} > 0,
            "$what: $v refreshed incrementally and committed")
          or diag($json->encode($r));
        $after{$v} = view_image($v);
    }
    crash_server($what);
    for my $v (@views) {
        is(view_image($v), $after{$v}, "$what: $v holds the rows of the committed refresh after crash recovery");
    }
    check_views($node, "$what, after recovery");
    sql(q{UPDATE orders SET amount = amount + 5, cust = 2 WHERE id BETWEEN 200 AND 230; DELETE FROM custs WHERE id = 4});
    for my $v (@views) {
        my $r = refresh($node, $v);
        ok($r->{status} eq 'updated' && !defined $r->{response}{fallback} && $r->{response}{incremental}{keys} > 0,
            "$what: a further change is refreshed into $v incrementally")
          or diag($json->encode($r));
    }
    check_views($node, "$what, then a change");
}

############################################################################################
# 4. The standby.

{
    my $what = 'standby';
    sql(q{
UPDATE orders SET amount = 12345.67, cust = 1 WHERE id = 42;
UPDATE orders SET status = 'void' WHERE id = 43;
INSERT INTO orders VALUES (29001, 59, 1.5, 'open');
UPDATE custs SET region = 'replicated' WHERE id = 1;
});
    for my $v (@views) {
        my $r = refresh($node, $v);
        ok($r->{status} eq 'updated' && !defined $r->{response}{fallback} && $r->{response}{incremental}{keys} > 0,
            "$what: $v refreshed incrementally on the primary")
          or diag($json->encode($r));
    }
    $node->wait_for_catchup($standby);
    is($standby->safe_psql('postgres', q{SELECT pg_is_in_recovery()}), 't', "$what: the standby is in recovery");
    check_views($standby, $what);
    is($standby->safe_psql('postgres', q{
        SET enable_seqscan = off; SET enable_bitmapscan = off;
        SELECT (SELECT amount || ' ' || region FROM inc_join WHERE id = 42)
               || ' ' || (SELECT count(*) FROM inc_join WHERE id = 43) || ' ' || (SELECT count(*) FROM inc_join WHERE id = 29001)}),
        '12345.67 replicated 0 1', "$what: the rows the incremental refresh changed are on the standby, found by their index");
    for my $v (@views) {
        is($standby->safe_psql('postgres', qq{SELECT md5(string_agg(v::text, ',' ORDER BY v.$key{$v})) FROM $v v}),
            view_image($v), "$what: $v on the standby is the primary's");
    }
    # A refresh on the standby: refused as read-only, cleanly.
    my $image = $standby->safe_psql('postgres', q{SELECT md5(string_agg(v::text, ',' ORDER BY v.cust)) FROM inc_agg v});
    my ($ret, $out, $err) = $standby->psql('postgres', "\\set VERBOSITY verbose\nSELECT matviews.refresh('inc_agg')");
    my $r = $ret == 0 ? eval { $json->decode($out) } : undef;
    # Either a response with status error, or a raised error; its SQLSTATE.
    my $state = $r ? ($r->{error}{sqlstate} // '') : ($err =~ /ERROR:  ([0-9A-Z]{5}):/ ? $1 : '');
    note("$what: matviews.refresh on the standby: psql exit $ret, "
        . ($r ? "response $out" : "error: $err"));
    is($state, '25006', "$what: matviews.refresh on the standby fails as read-only (25006)")
      or diag("exit $ret, out $out, err $err");
    ok(!$r || $r->{status} eq 'error', "$what: its response, if any, has status error");
    is($standby->safe_psql('postgres', q{SELECT md5(string_agg(v::text, ',' ORDER BY v.cust)) FROM inc_agg v}), $image,
        "$what: the view on the standby is unchanged");
    is($standby->safe_psql('postgres', q{SELECT pg_is_in_recovery()}), 't', "$what: the standby is still in recovery");
    my $slog = slurp_file($standby->logfile);
    ok($slog !~ /TRAP:|terminated by signal|PANIC/, "$what: no standby process crashed");
}

my $log = slurp_file($node->logfile);
my $sig9 = () = $log =~ /terminated by signal 9/g;
is($sig9, 1, 'the primary saw exactly the one backend it was told about killed (the other crashes killed the postmaster)');
ok($log !~ /TRAP:|terminated by signal (?!9\b)\d+|PANIC/, 'no other process crashed on the primary');
note(sprintf('034_incremental_crash: %.1f s', time() - $started));
$standby->stop;
$node->stop;
done_testing();
