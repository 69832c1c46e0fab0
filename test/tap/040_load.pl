# Load test: at least 12 concurrent clients call refresh (every strategy, some with cascade), swap,
# enqueue, cancel (of runs they enqueued) and wait on a regular, a concurrent and a swap-managed
# view and a managed view depending on the swap-managed one, for LOAD_S seconds (30 by default;
# LOAD_S=60 by hand), while two writers insert, update and delete the base tables. During the
# load a job worker, the scheduler and a client backend are each killed with SIGKILL at a seeded
# random moment (LOAD_SEED=n repeats a run's choices); the postmaster restarts the cluster and
# the clients reconnect and carry on. Connection errors inside a crash-restart window are counted
# apart, not as failures.
#
# Checks: every call got a response (status and SQLSTATE recorded per function); no XX000 and no
# deadlock (40P01) anywhere, in responses, raised errors, cascaded entries or the runs of jobs;
# no call hung and every client ended within LOAD_S + a margin; every client worked again after
# the last crash; the queue drained (nothing queued or running) within 10 s of the load's end;
# after a final refresh each view equals its query (EXCEPT ALL both ways); no leftover relation
# (no *_mvswap build, no pg_temp_N transient table, the same relations as before the load); no
# process but the three killed ones crashed.
#
# It prints calls per second, p50/p99 latency per function, counts per status and SQLSTATE, and
# the queue depth sampled every second (bench/README.md, "Load test").
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use List::Util qw(shuffle sum max);
use POSIX ();
use Time::HiRes qw(time sleep);

my $load_s    = $ENV{LOAD_S} // 30;
my $n_clients = $ENV{LOAD_CLIENTS} // 12;
my $n_writers = $ENV{LOAD_WRITERS} // 2;
my $seed      = $ENV{LOAD_SEED} // (int(time() * 1000) ^ $$) % 1_000_000_000;
my $margin_s  = 60;    # a client must end within LOAD_S + this
my $call_hung_s = 60;  # a single call taking longer than this is hung
my $drain_s   = 10;    # the queue must be empty this long after the load
die "at least 12 clients" if $n_clients < 12;
srand($seed);
diag("040_load: seed $seed (LOAD_SEED=$seed repeats it), $n_clients clients, $n_writers writers, "
    . "${load_s}s");

my $node = PostgreSQL::Test::Cluster->new('load');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 32
max_connections = 60
matviews.max_workers = 2
matviews.max_workers_per_owner = 2
restart_after_crash = on
log_statement = none
log_lock_waits = on
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# The views, with the query each must equal after the final refresh. Each view's query naps a
# little (once per refresh: an uncorrelated subquery) so that jobs last long enough to be killed.
my %query = (
    mv_regular => q{SELECT customer, count(*) AS n, sum(amount) AS total FROM orders
                    WHERE (SELECT nap(0.02)) = 1 GROUP BY customer},
    mv_concurrent => q{SELECT id, customer, amount FROM orders
                       WHERE amount >= 50 AND (SELECT nap(0.02)) = 1},
    mv_swap => q{SELECT c.id, c.name, count(o.id) AS n, coalesce(sum(o.amount), 0) AS total
                 FROM customers c LEFT JOIN orders o ON o.customer = c.id
                 WHERE (SELECT nap(0.03)) = 1 GROUP BY c.id, c.name},
    mv_dep => q{SELECT n, count(*) AS customers FROM mv_swap GROUP BY n},
);
my @views = qw(mv_regular mv_concurrent mv_swap mv_dep);    # dependency order
my %unique = (mv_concurrent => 1, mv_swap => 1);            # views with a unique index

sql(q{
CREATE ROLE loader LOGIN;
GRANT CREATE ON SCHEMA public TO loader;
CREATE EXTENSION matviews;
CREATE FUNCTION nap(float8) RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep($1)';
});
my $setup = qq{
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 200) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric NOT NULL);
INSERT INTO orders (customer, amount)
  SELECT 1 + g % 200, round((g * 7919 % 10000) / 100.0, 2) FROM generate_series(1, 20000) g;
SELECT matviews.create('mv_regular', \$q\$$query{mv_regular}\$q\$, refresh_strategy => 'regular');
SELECT matviews.create('mv_concurrent', \$q\$$query{mv_concurrent}\$q\$,
                       refresh_strategy => 'concurrent', unique_index_columns => ARRAY['id']);
SELECT matviews.create('mv_swap', \$q\$$query{mv_swap}\$q\$,
                       refresh_strategy => 'swap', unique_index_columns => ARRAY['id']);
CREATE INDEX mv_swap_n ON mv_swap (n);
SELECT matviews.create('mv_dep', \$q\$$query{mv_dep}\$q\$, refresh_strategy => 'regular');
};
my $created = $node->safe_psql('postgres', $setup, extra_params => ['-U', 'loader']);
is(scalar(() = $created =~ /"status": "created"/g), 4, 'the four views are created and managed');
ok($node->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'}),
    'the scheduler runs');

# The relations before the load: after it, the same names must be there and no other.
my $relations_sql = q{SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
                      WHERE relnamespace = 'public'::regnamespace};
my $relations_before = sql($relations_sql);

############################################################################################
# A client: a persistent psql driven through pipes. Each call is followed by \echo lines that
# carry psql's SQLSTATE variable, so raised errors are told apart from answers; a psql that has
# lost its connection exits, and the client starts a new one.

package LoadSession {
    our $lost = qr/server closed the connection unexpectedly|connection to server was lost|terminating connection because of crash|no connection to the server|could not send data to server|could not receive data from server/;

    sub new {
        my ($class, $timeout) = @_;
        my $self = bless { in => '', out => '', err => '', n => 0 }, $class;
        $self->{timer} = IPC::Run::timer($timeout);
        $self->{tick} = IPC::Run::timer(0.5);    # wakes pump() up to look at stderr
        $self->{h} = IPC::Run::start(
            [ 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=0' ],
            '<', \$self->{in}, '>', \$self->{out}, '2>', \$self->{err}, $self->{timer},
            $self->{tick});
        return $self;
    }

    # Returns (kind, output, sqlstate, message): kind 'ok' (answered), 'raised' (an ERROR),
    # 'conn' (psql exited: the connection was lost or never made) or 'hung' (timed out).
    sub call {
        my ($self, $sql) = @_;
        my $n = ++$self->{n};
        $self->{out} = '';
        $self->{err} = '';
        $self->{in} .= "$sql\n;\n\\echo __MSG__ :LAST_ERROR_MESSAGE\n\\echo __END__ $n :SQLSTATE\n";
        $self->{timer}->start;
        my $end = qr/__MSG__ ?(.*?)\n__END__ $n (\S+)\n/s;
        my $lost_at;
        while (1) {
            if ($self->{out} =~ $end) {
                my ($msg, $state) = ($1, $2);
                (my $output = $self->{out}) =~ s/__MSG__.*//s;
                chomp $output;
                return ('ok', $output, '', '') if $state eq '00000';
                # A connection ended by the server (crash restart, recovery) is a connection error.
                return ('conn', $output, $state, $msg) if $state =~ /^(57P0[1-3]|08...)$/;
                return ('raised', $output, $state, $msg);
            }
            # The server closed the connection (a crash restart): psql sometimes stays on after
            # printing libpq's message instead of exiting; the call has ended with the connection.
            if (!$lost_at && $self->{err} =~ $LoadSession::lost) {
                $lost_at = Time::HiRes::time();
            }
            if ($lost_at && Time::HiRes::time() - $lost_at > 2) {
                my $err = $self->{err};
                $err =~ s/\s+/ /g;
                $self->kill;
                return ('conn', $self->{out}, '', "psql stayed after losing its connection: $err");
            }
            if ($self->{timer}->is_expired) {
                $self->kill;
                return ('hung', $self->{out}, '', "no answer within the call timeout: $self->{err}");
            }
            if (!$self->{h}->pumpable) {
                my $err = $self->{err};
                $err =~ s/\s+/ /g;
                $self->finish;
                return ('conn', $self->{out}, '', $err);
            }
            $self->{tick}->start(0.5);
            my $ok = eval { $self->{h}->pump; 1 };
            if (!$ok) {
                my $err = "$self->{err} $@";
                $err =~ s/\s+/ /g;
                $self->finish;
                return ('conn', $self->{out}, '', $err);
            }
        }
    }

    sub finish { my ($self) = @_; eval { $self->{h}->finish }; $self->{dead} = 1; }
    sub kill { my ($self) = @_; eval { $self->{h}->kill_kill }; $self->{dead} = 1; }
    sub quit {
        my ($self) = @_;
        return if $self->{dead};
        $self->{in} .= "\\q\n";
        $self->{timer}->start(10);
        eval { $self->{h}->finish };
    }
}

my $json = JSON::PP->new;

# Every SQLSTATE anywhere in a response (its error, cascaded entries' errors, a waited run's).
sub all_sqlstates {
    my ($v, $acc) = @_;
    if (ref $v eq 'HASH') {
        for my $k (sort keys %$v) {
            if ($k eq 'sqlstate' && defined $v->{$k} && !ref $v->{$k}) { push @$acc, $v->{$k}; }
            else { all_sqlstates($v->{$k}, $acc); }
        }
    }
    elsif (ref $v eq 'ARRAY') { all_sqlstates($_, $acc) for @$v; }
    return $acc;
}

sub pick { return $_[ int(rand(@_)) ]; }

sub quote_lit { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }

# The next call of a load client: [function, sql].
sub next_client_call {
    my ($mine) = @_;
    my $r = rand(100);
    my $view = pick(@views);
    if ($r < 30) {
        my @strategies = ('NULL', "'regular'", "'swap'");
        push @strategies, "'concurrent'" if $unique{$view};
        my $cascade = rand() < 0.3 ? 'true' : 'false';
        return ['refresh', sprintf(q{SELECT matviews.refresh('%s', strategy => %s, cascade => %s)},
                $view, pick(@strategies), $cascade)];
    }
    if ($r < 40) {
        return ['swap', qq{SELECT matviews.swap('$view')}];
    }
    if ($r < 70 || !@$mine) {
        my $op = rand() < 0.25 ? 'swap' : 'refresh';
        my @strategies = ('NULL', "'regular'", "'swap'");
        push @strategies, "'concurrent'" if $unique{$view};
        return ['enqueue', sprintf(q{SELECT matviews.enqueue('%s', operation => '%s', strategy => %s)},
                $view, $op, $op eq 'swap' ? 'NULL' : pick(@strategies))];
    }
    # Runs of this client, recent ones more often.
    my $run = rand() < 0.7 ? $mine->[ -1 - int(rand(@$mine < 5 ? @$mine : 5)) ] : pick(@$mine);
    if ($r < 80) {
        return ['cancel', "SELECT matviews.cancel($run)"];
    }
    return ['wait', "SELECT matviews.wait($run, '2 seconds')"];
}

# The next statement of a writer: single-row autocommit statements, so writers never deadlock
# with each other.
sub next_writer_call {
    my $r = rand(100);
    my $c = 1 + int(rand(200));
    if ($r < 45) {
        return ['write', sprintf(q{INSERT INTO orders (customer, amount) VALUES (%d, %.2f)},
                $c, rand(100))];
    }
    if ($r < 75) {
        return ['write', sprintf(q{UPDATE orders SET amount = %.2f, customer = %d
                                   WHERE id = (SELECT max(id) - %d FROM orders)},
                rand(100), $c, int(rand(20000)))];
    }
    if ($r < 95) {
        return ['write', sprintf(q{DELETE FROM orders WHERE id = (SELECT max(id) - %d FROM orders)},
                int(rand(20000)))];
    }
    return ['write', sprintf(q{UPDATE customers SET name = 'customer %d v%d' WHERE id = %d},
            $c, int(rand(1000)), $c)];
}

my $logdir = $PostgreSQL::Test::Utils::tmp_check . '/load';
mkdir $logdir;
my $start_at = time() + 2;
my $stop_at  = $start_at + $load_s;

# One client process: calls until $stop_at, one line per call in its log:
# start, end, function, kind (ok/raised/conn/hung/noresp), status, sqlstate, all sqlstates,
# latency in ms, coalesced, detail.
sub client_main {
    my ($name, $writer) = @_;
    $ENV{PGHOST}     = $node->host;
    $ENV{PGPORT}     = $node->port;
    $ENV{PGDATABASE} = 'postgres';
    $ENV{PGUSER}     = 'loader';
    $ENV{PGAPPNAME}  = $name;
    open my $log, '>', "$logdir/$name.log" or die "$name.log: $!";
    $log->autoflush(1);
    my $record = sub {
        my ($t0, $t1, $f, $kind, $status, $state, $states, $coalesced, $detail) = @_;
        $detail //= '';
        $detail =~ s/[\t\n]/ /g;
        print $log join("\t", sprintf('%.4f', $t0), sprintf('%.4f', $t1), $f, $kind,
            $status // '', $state // '', $states // '', sprintf('%.3f', ($t1 - $t0) * 1000),
            $coalesced ? 1 : 0, $detail), "\n";
    };
    my $session;
    my @mine;
    my $started = 0;
    while (time() < $stop_at) {
        if (!$session) {
            $session = LoadSession->new($call_hung_s);
            my $t0 = time();
            my ($kind, $out, $state, $msg) = $session->call('SELECT 1');
            if ($kind ne 'ok') {
                $record->($t0, time(), 'connect', $kind, '', $state, $state, 0, $msg);
                $session->kill;
                $session = undef;
                sleep(0.1);    # pace the reconnection attempts during a crash restart
                next;
            }
        }
        if (!$started) {
            # Everybody starts together.
            my $wait = $start_at - time();
            sleep($wait) if $wait > 0;
            $started = 1;
        }
        my ($f, $stmt) = @{ $writer ? next_writer_call() : next_client_call(\@mine) };
        my $t0 = time();
        my ($kind, $out, $state, $msg) = $session->call($stmt);
        my $t1 = time();
        if ($kind eq 'ok' && $f ne 'write') {
            my $r = eval { $json->decode($out) };
            if (!$r || ref $r ne 'HASH' || !defined $r->{status}) {
                $record->($t0, $t1, $f, 'noresp', '', '', '', 0, "$stmt => '$out'");
                next;
            }
            my $st = $r->{error} ? ($r->{error}{sqlstate} // '') : '';
            my $states = join(',', @{ all_sqlstates($r, []) });
            push @mine, $r->{run_id} if $f eq 'enqueue' && $r->{status} eq 'queued' && $r->{run_id};
            my $detail = $r->{error} ? "$stmt: " . ($r->{error}{message} // '') : $stmt;
            if ($states =~ /XX000|40P01/ || $t1 - $t0 > 10) {
                $detail = "$stmt => $out";
            }
            # A cascaded entry's outcome, for the summary.
            my @casc = ref $r->{response} eq 'HASH' && ref $r->{response}{cascade} eq 'ARRAY'
                ? @{ $r->{response}{cascade} } : ();
            $record->($t0, $t1, $f, 'ok', $r->{status}, $st, $states, $r->{coalesced}, $detail);
            for my $c (@casc) {
                my $cst = ref $c->{error} eq 'HASH' ? ($c->{error}{sqlstate} // '') : '';
                $record->($t0, $t1, 'refresh.cascade', 'ok', $c->{status} // '', $cst, $cst, 0,
                    $cst ? "$c->{view}: " . ($c->{error}{message} // '') : '');
            }
        }
        elsif ($kind eq 'ok') {
            $record->($t0, $t1, $f, 'ok', 'done', '', '', 0, '');
        }
        else {
            $record->($t0, $t1, $f, $kind, $kind eq 'raised' ? 'raised' : '', $state, $state, 0,
                "$stmt: $msg");
            if ($kind ne 'raised') {
                $session->kill;
                $session = undef;
            }
        }
    }
    $session->quit if $session;
    print $log "DONE\t", sprintf('%.4f', time()), "\n";
    close $log;
}

my %children;    # pid => name
for my $i (1 .. $n_clients + $n_writers) {
    my $writer = $i > $n_clients;
    my $name = $writer ? sprintf('load_writer_%d', $i - $n_clients) : sprintf('load_client_%02d', $i);
    my $child_seed = $seed + $i;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        # No Test::More or cluster END blocks in a child: it must never stop the node.
        srand($child_seed);
        my $ok = eval { client_main($name, $writer); 1 };
        if (!$ok) {
            open my $f, '>>', "$logdir/$name.log";
            print $f "DIED\t$@\n";
        }
        POSIX::_exit($ok ? 0 : 1);
    }
    $children{$pid} = $name;
}

############################################################################################
# The test process: samples the queue every second and kills three processes at random moments.

my @kill_types = shuffle(qw(job scheduler client));
my @kill_at = sort { $a <=> $b } map { $load_s * (0.1 + 0.6 * rand()) } 1 .. 3;
for my $i (1 .. $#kill_at) {
    $kill_at[$i] = $kill_at[ $i - 1 ] + 3 if $kill_at[$i] < $kill_at[ $i - 1 ] + 3;
}
my @pending = map { { type => $kill_types[$_], at => $kill_at[$_] } } 0 .. 2;
diag(sprintf('040_load: kills planned: %s',
    join(', ', map { sprintf('%s at %.1fs', $_->{type}, $_->{at}) } @pending)));

my %pid_query = (
    job       => q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews job'},
    scheduler => q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'matviews scheduler'},
    client    => q{SELECT pid FROM pg_stat_activity
                   WHERE backend_type = 'client backend' AND application_name LIKE 'load\_%'},
);

my @samples;     # [second, queued, running]
my (%stuck_seen, $stuck_dumps);
my @kills;       # {type, pid, at, ready}
my $crash;       # the kill whose restart is under way
my $next_sample = $start_at;
my $logfile = $node->logfile;

sub psql_value {
    # undef when the server is restarting: psql then exits at once, and IPC::Run may die
    # writing the query to its stdin (EPIPE).
    my ($q) = @_;
    my ($ret, $out, $err);
    eval { ($ret, $out, $err) = $node->psql('postgres', $q); 1 } or return undef;
    return $ret == 0 ? $out : undef;
}

while (time() < $stop_at) {
    my $now = time();
    if ($now >= $next_sample) {
        my $v = psql_value(q{SELECT count(*) FILTER (WHERE status = 'queued') || ' '
                                    || count(*) FILTER (WHERE status = 'running')
                             FROM matviews.runs});
        push @samples, [ int($next_sample - $start_at + 0.5), defined $v ? split(/ /, $v) : () ];
        $next_sample += 1;
        # A call running for more than 10 s: show who waits for whom (pg_blocking_pids sees lock
        # waits only; a poll loop shows as its wait event), once per backend.
        my $stuck = psql_value(q{SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
                                 WHERE state = 'active' AND now() - query_start > interval '10 s'
                                   AND (application_name LIKE 'load\_%' OR backend_type = 'matviews job')});
        my @new = grep { !$stuck_seen{$_}++ } split / /, ($stuck // '');
        if (@new && $stuck_dumps++ < 3) {
            diag(sprintf("040_load: at %.1fs, running for more than 10 s: @new\n", time() - $start_at)
                . (psql_value(q{
                SELECT string_agg(format('%s %s %s %s/%s blocked by %s, %s s: %s', pid,
                                         coalesce(nullif(application_name, ''), backend_type), state,
                                         wait_event_type, wait_event, pg_blocking_pids(pid),
                                         round(extract(epoch FROM now() - query_start)::numeric, 1),
                                         left(regexp_replace(query, '\s+', ' ', 'g'), 120)), E'\n' ORDER BY pid)
                FROM pg_stat_activity
                WHERE state <> 'idle' AND (application_name LIKE 'load\_%' OR backend_type LIKE 'matviews%')})
                // '?')
                . "\nrunning runs:\n"
                . (psql_value(q{SELECT string_agg(id || ' ' || view || ' ' || operation || ' ' || coalesce(strategy, '-')
                                                   || ' pid ' || coalesce(pid::text, '-') || ' since ' || started_at, E'\n')
                                FROM matviews.runs WHERE status = 'running'}) // '?'));
        }
    }
    if ($crash) {
        my $log = slurp_file($logfile, $crash->{offset});
        if (!$crash->{seen} && $log =~ /\(PID $crash->{pid}\) was terminated by signal 9/) {
            $crash->{seen} = time();
        }
        if ($crash->{seen} && $log =~ /database system is ready to accept connections/) {
            $crash->{ready} = time();
            push @kills, $crash;
            diag(sprintf('040_load: killed the %s (PID %d) at %.1fs, accepting connections at %.1fs',
                $crash->{type}, $crash->{pid}, $crash->{at} - $start_at, $crash->{ready} - $start_at));
            undef $crash;
        }
        elsif (!$crash->{seen} && time() - $crash->{at} > 5) {
            # The process had ended by itself before the signal: try again.
            unshift @pending, { type => $crash->{type}, at => 0 };
            undef $crash;
        }
    }
    elsif (@pending && $now - $start_at >= $pending[0]{at}) {
        my $pids = psql_value($pid_query{ $pending[0]{type} });
        my @pids = defined $pids ? grep { /^\d+$/ } split /\n/, $pids : ();
        if (@pids) {
            my $pid = pick(@pids);
            my $offset = -s $logfile;
            if (kill('KILL', $pid)) {
                $crash = { type => $pending[0]{type}, pid => $pid, at => time(), offset => $offset };
                shift @pending;
            }
        }
    }
    sleep(0.05);
}

# The load is over: wait for every client, each within the margin.
my %exited;    # name => [exit status, time]
my $give_up = $stop_at + $margin_s;
while (%children && time() < $give_up) {
    my $pid = waitpid(-1, POSIX::WNOHANG());
    if ($pid > 0) {
        $exited{ $children{$pid} } = [ $?, time() ];
        delete $children{$pid};
        next;
    }
    if ($crash) {
        # A restart still under way at the end of the load.
        my $log = slurp_file($logfile, $crash->{offset});
        if ($log =~ /database system is ready to accept connections/) {
            $crash->{ready} = time();
            push @kills, $crash;
            undef $crash;
        }
    }
    sleep(0.05);
}
my $load_end = time();
my @hung_clients = sort values %children;
for my $name (@hung_clients) {
    diag("040_load: $name did not end; its backend: "
        . (psql_value(qq{SELECT state || ' ' || coalesce(wait_event_type || ':' || wait_event, '')
                              || ' ' || query
                       FROM pg_stat_activity WHERE application_name = '$name'}) // '?'));
}
kill 'KILL', $_ for keys %children;
waitpid($_, 0) for keys %children;
is(scalar(@hung_clients), 0, 'every client ended within LOAD_S + the margin')
  or diag("hung clients: @hung_clients");
is(scalar(grep { $exited{$_}[0] != 0 } keys %exited), 0, 'every client process exited cleanly')
  or diag(join("\n", map { "$_: " . `tail -n 3 $logdir/$_.log` } grep { $exited{$_}[0] } keys %exited));

# The queue drains.
my $drained;
my $drain_deadline = $load_end + $drain_s;
while (1) {
    my $left = psql_value(q{SELECT count(*) FROM matviews.runs WHERE status IN ('queued', 'running')});
    if (defined $left && $left eq '0') { $drained = time() - $load_end; last; }
    last if time() > $drain_deadline;
    sleep(0.1);
}
ok(defined $drained, "the queue drained within ${drain_s}s of the load's end")
  or diag("left in the queue:\n" . (psql_value(q{
        SELECT string_agg(id || ' ' || view || ' ' || operation || ' ' || coalesce(strategy, '-')
                          || ' ' || status || ' run_at ' || run_at || ' started ' || coalesce(started_at::text, '-')
                          || ' pid ' || coalesce(pid::text, '-'), E'\n' ORDER BY id)
        FROM matviews.runs WHERE status IN ('queued', 'running')}) // '?')
    . "\njobs:\n" . (psql_value(q{SELECT string_agg(pid || ' ' || backend_type || ' ' || coalesce(wait_event, '') || ' ' || query, E'\n')
                                 FROM pg_stat_activity WHERE backend_type LIKE 'matviews%'}) // '?'));
diag(sprintf('040_load: the queue drained %.2fs after the load', $drained)) if defined $drained;

# The kills happened, each a crash restart.
is(join(',', sort map { $_->{type} } @kills), 'client,job,scheduler',
    'a job, the scheduler and a client backend were each killed with SIGKILL during the load');

############################################################################################
# The outcomes of every call.

my (@calls, %done_at, @died);
for my $name (sort(keys %exited), @hung_clients) {
    open my $f, '<', "$logdir/$name.log" or next;
    while (my $line = <$f>) {
        chomp $line;
        if ($line =~ /^DONE\t(\S+)/) { $done_at{$name} = $1; next; }
        if ($line =~ /^DIED\t(.*)/) { push @died, "$name: $1"; next; }
        my @c = split /\t/, $line, 10;
        push @calls, { client => $name, t0 => $c[0], t1 => $c[1], f => $c[2], kind => $c[3],
            status => $c[4], state => $c[5], states => $c[6], ms => $c[7], coalesced => $c[8],
            detail => $c[9] // '' };
    }
}
is(scalar(@died), 0, 'no client died') or diag(join("\n", @died));

# A connection error inside a crash-restart window (from the kill to 3 s after the cluster
# accepted connections again) is expected; anywhere else it is a failure.
sub in_crash_window {
    my ($c) = @_;
    for my $k (@kills, $crash ? ($crash) : ()) {
        my $end = ($k->{ready} // time()) + 3;
        # The kill's time is taken after kill() returns; a client may see it a little earlier.
        return 1 if $c->{t1} >= $k->{at} - 0.5 && $c->{t0} <= $end;
    }
    return 0;
}
my @conn_in  = grep { $_->{kind} eq 'conn' && in_crash_window($_) } @calls;
my @conn_out = grep { $_->{kind} eq 'conn' && !in_crash_window($_) } @calls;
my @noresp   = grep { $_->{kind} eq 'noresp' } @calls;
my @hung     = grep { $_->{kind} eq 'hung' } @calls;
my @internal = grep { $_->{states} =~ /XX000/ && $_->{f} ne 'refresh.cascade' } @calls;
my @deadlock = grep { $_->{states} =~ /40P01/ && $_->{f} ne 'refresh.cascade' } @calls;
my @answered = grep { $_->{kind} eq 'ok' || $_->{kind} eq 'raised' } @calls;
my @real     = grep { $_->{f} ne 'connect' && $_->{f} ne 'refresh.cascade' } @calls;

sub show { my @l = @_; my $n = @l; splice(@l, 10) if @l > 10;
           return join("\n", "$n calls:", map { "$_->{client} $_->{f} $_->{kind} $_->{status} $_->{state}: $_->{detail}" } @l); }

ok(scalar(@real) > 0, 'the clients made calls');
# Slow calls are not failures (a cancel waits up to 30 s), but they are shown.
my @slow = sort { $b->{ms} <=> $a->{ms} } grep { $_->{ms} > 10_000 && $_->{kind} ne 'hung' } @real;
diag('040_load: calls slower than 10 s: ' . show(map { { %$_, detail => sprintf('%.0f ms at %.1fs: %s',
    $_->{ms}, $_->{t0} - $start_at, $_->{detail}) } } @slow)) if @slow;
is(scalar(@noresp), 0, 'every call returned a response') or diag(show(@noresp));
is(scalar(@hung), 0, 'no call hung') or diag(show(@hung));
is(scalar(@internal), 0, 'no XX000 (internal error)') or diag(show(@internal));
is(scalar(@deadlock), 0, 'no deadlock (40P01)') or diag(show(@deadlock));
is(scalar(@conn_out), 0, 'no connection error outside the crash-restart windows') or diag(show(@conn_out));

# Every client worked again after the last restart.
my $last_ready = max(map { $_->{ready} // 0 } @kills) // 0;
my @idle_after = grep {
    my $n = $_;
    !grep { $_->{client} eq $n && $_->{kind} eq 'ok' && $_->{t0} > $last_ready } @calls
} sort keys %exited;
is(scalar(@idle_after), 0, 'every client reconnected and made calls after the last crash restart')
  or diag("no call after the last restart: @idle_after");

############################################################################################
# After the load: the runs, a final refresh of each view, the views against their queries, and
# no leftovers.

my $runs_bad = sql(q{SELECT count(*) FROM matviews.runs WHERE error->>'sqlstate' IN ('XX000', '40P01')});
is($runs_bad, '0', 'no run of matviews.runs failed with XX000 or 40P01')
  or diag(sql(q{SELECT string_agg(id || ' ' || operation || ' ' || trigger || ' ' || (error->>'sqlstate') || ' '
                || (error->>'message') || ' ' || coalesce(error->>'detail', ''), E'\n')
                FROM (SELECT * FROM matviews.runs WHERE error->>'sqlstate' IN ('XX000', '40P01')
                      ORDER BY id LIMIT 10) r}));
my $runs_summary = sql(q{
    SELECT string_agg(line, E'\n' ORDER BY line) FROM (
        SELECT trigger || ' ' || operation || ' ' || status || coalesce(' ' || (error->>'sqlstate'), '')
               || coalesce(' (' || left(error->>'message', 60) || ')', '') || ': ' || count(*) AS line
        FROM matviews.runs GROUP BY trigger, operation, status, error->>'sqlstate', left(error->>'message', 60)) s});

for my $v (@views) {
    my $r = sql(qq{SELECT matviews.refresh('$v')->>'status'});
    is($r, 'updated', "final refresh of $v");
}
for my $v (@views) {
    my $diff = sql(qq{SELECT (SELECT count(*) FROM (TABLE $v EXCEPT ALL ($query{$v})) a) || ' '
                          || (SELECT count(*) FROM (($query{$v}) EXCEPT ALL TABLE $v) b)});
    is($diff, '0 0', "$v equals its query");
}
is(sql(q{SELECT count(*) FROM pg_class WHERE relname LIKE '%\_mvswap%' OR relname ~ '^pg_temp_[0-9]+$'}),
    '0', 'no swap build (*_mvswap) or transient refresh table left');
is(sql($relations_sql), $relations_before, 'the same relations as before the load, and no other');
is(sql(q{SELECT count(*) FROM matviews.runs WHERE status = 'running'}), '0', 'no run left running');

my $log = slurp_file($logfile);
my $sig9 = () = $log =~ /was terminated by signal 9/g;
is($sig9, 3, 'only the three killed processes were terminated by SIGKILL');
ok($log !~ /terminated by signal (?!9\b)\d+|TRAP:|exited with exit code [^01]\b/,
    'no other process crashed (no assertion failure, segfault or abnormal exit)')
  or diag(join("\n", grep { /terminated by signal (?!9\b)\d+|TRAP:|exited with exit code [^01]\b/ }
        split /\n/, $log));
# An error's lines in the server log: the ERROR line and the DETAIL, CONTEXT and STATEMENT after it.
sub log_excerpts {
    my ($pattern, $max) = @_;
    my @l = split /\n/, $log;
    my @out;
    for my $i (0 .. $#l) {
        next unless $l[$i] =~ $pattern;
        my @e = ($l[$i]);
        for (my $j = $i + 1; $j <= $#l && $l[$j] !~ /^\d{4}-\d\d-\d\d .*\b(LOG|ERROR|FATAL|WARNING):/; $j++) {
            push @e, $l[$j];
        }
        push @out, join("\n", @e);
        last if @out >= $max;
    }
    return join("\n--\n", @out);
}
ok($log !~ /deadlock detected|detected deadlock/, 'no deadlock in the server log')
  or diag("server log, first deadlocks:\n" . log_excerpts(qr/ERROR:  deadlock detected|detected deadlock/, 4));
ok($log !~ /ERROR:  XX000|could not open relation with OID/, 'no internal error in the server log')
  or diag("server log, first internal errors:\n" . log_excerpts(qr/ERROR:  (XX000|could not open relation with OID)/, 4));

############################################################################################
# The summary.

sub pct {
    my ($p, @sorted) = @_;
    return 0 unless @sorted;
    my $i = int($p / 100 * @sorted + 0.5) - 1;
    $i = 0 if $i < 0;
    $i = $#sorted if $i > $#sorted;
    return $sorted[$i];
}
my $counted = grep { $_->{kind} ne 'conn' && $_->{f} ne 'connect' && $_->{f} ne 'refresh.cascade' } @calls;
my @lines;
push @lines, sprintf('seed %s, %d clients + %d writers, %ss of load, %d calls answered, %.0f calls/s '
    . '(%.0f calls/s without the writers), %d connection errors in crash windows',
    $seed, $n_clients, $n_writers, $load_s, $counted, $counted / $load_s,
    (grep { $_->{kind} ne 'conn' && $_->{f} !~ /^(connect|write|refresh\.cascade)$/ } @calls) / $load_s,
    scalar(@conn_in));
push @lines, '| function | calls | p50 ms | p99 ms | max ms |';
push @lines, '| --- | ---: | ---: | ---: | ---: |';
for my $f (qw(refresh swap enqueue cancel wait write)) {
    my @ms = sort { $a <=> $b } map { $_->{ms} }
        grep { $_->{f} eq $f && ($_->{kind} eq 'ok' || $_->{kind} eq 'raised') } @calls;
    push @lines, sprintf('| %s | %d | %.1f | %.1f | %.1f |', $f, scalar(@ms), pct(50, @ms), pct(99, @ms),
        @ms ? $ms[-1] : 0);
}
my %outcome;
for my $c (@calls) {
    next if $c->{f} eq 'write' && $c->{kind} eq 'ok';
    my $k = join(' ', $c->{f}, $c->{kind} eq 'ok' ? () : $c->{kind}, $c->{status} || (),
        $c->{state} || (), $c->{coalesced} ? '(coalesced)' : ());
    $outcome{$k}++;
}
$outcome{'write done'} = grep { $_->{f} eq 'write' && $_->{kind} eq 'ok' } @calls;
push @lines, '| function outcome (status sqlstate) | count |', '| --- | ---: |';
push @lines, map { "| $_ | $outcome{$_} |" } sort keys %outcome;
push @lines, 'runs recorded in matviews.runs (trigger operation status sqlstate): ', split /\n/, $runs_summary;
push @lines, 'kills: ' . join(', ', map { sprintf('%s at %.1fs (restarted in %.1fs)', $_->{type},
    $_->{at} - $start_at, $_->{ready} - $_->{at}) } @kills);
push @lines, 'queue depth each second (s: queued/running, - while restarting): '
    . join(' ', map { @$_ > 1 ? "$_->[0]:$_->[1]/$_->[2]" : "$_->[0]:-" } @samples);
push @lines, sprintf('queue drained %.2fs after the load', $drained // -1);
diag("040_load summary\n" . join("\n", @lines));

$node->stop;
done_testing();
