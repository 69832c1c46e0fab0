# Incremental refresh, differential property test: every incremental view, refreshed with
# matviews.refresh after random DML, equals its defining query exactly (EXCEPT ALL both ways).
#
#  0. Deterministic cases first. A LEFT JOIN whose key or GROUP BY uses a column of the nullable
#     side, where the first matching row inserted or the last one deleted makes a null-extended
#     row appear or disappear (an anti-join may be refused instead, 0A000). Writes the capture
#     triggers do not see: with session_replication_role = replica (logical replication's apply
#     worker), with the triggers disabled then enabled again, with one capture trigger left
#     disabled; the next refresh must not silently miss them.
#  1. 40 views (an anti-join among them may be refused) over a small schema (orders, custs,
#     "HR".employees, the list-partitioned meas with 3 partitions, an inheritance parent and
#     child, channels/users/user_notification_preferences,
#     addrs, notes with foreign key actions and a count kept by a user trigger, plain views):
#     filter and projection; inner join; LEFT JOINs with the changed table on either side,
#     COALESCE, keys from the nullable side, chained, RIGHT JOIN; GROUP BY with count/sum/min/max
#     over joins (NULL group keys, multi-column keys, keys of float, text, timestamp, date, numeric
#     values that are hard to print and read back: NaN, infinities, quotes, newlines, long text);
#     HAVING; DISTINCT; UNION ALL with a constant discriminator in the key; a UNION ALL inside a
#     FROM subquery; LATERAL; self-joins (inner and LEFT); the partitioned table written through
#     the parent (row movement between partitions) and into the partitions, and one partition
#     read directly; inheritance (the parent, ONLY the parent, the child); matviews over plain
#     views (also a table read both directly and through a view); output columns that need
#     quoting as the key; and the notification-preferences view (UNION ALL of two branches, each
#     with two LEFT JOINs and COALESCE). Base tables have a dropped column, a mixed-case column,
#     jsonb, text[], bytea, interval and a stored generated column.
#  2. Rounds of seeded random DML: single and multi-row INSERT, INSERT ... SELECT, COPY, MERGE,
#     upserts, UPDATE moving rows between groups and partitions, changing join keys and primary
#     keys (cascading), setting NULLs, DELETE, a data-modifying CTE; rolled-back transactions
#     (with large statements and a TRUNCATE), savepoints rolled back inside committed
#     transactions; writers with settings that change how values print. After each round every
#     view is refreshed (by a session with other such settings) and must: return status
#     'updated'; take the incremental path (no response.fallback) after its first refresh; equal
#     its query; report response.incremental.keys within an honest per-shape bound proportional
#     to the rows the round changed; report inserted - deleted = row_count_after -
#     row_count_before. Then matviews.changes must be empty (every view took every change in).
#     Special rounds: a transaction open across a refresh (wrote before it, commits after);
#     refreshes inside a writing transaction (committed, and rolled back); a column added to a
#     base table (the views over it fall back, DDL); a prepared transaction across a refresh;
#     TRUNCATE of a table and of one partition (the views over them fall back, TRUNCATE; the
#     view over another partition does not).
#  3. Two concurrent writers commit random DML (disjoint rows: no deadlock) while the main
#     session refreshes half of the views over and over and a second session the other half
#     (each refresh succeeds); after the writers stop, one more refresh and every view equals
#     its query.
#
# MATVIEWS_SEED=n repeats a run's random choices (the seed is printed, and is in every failure
# message; the interleaving of the concurrent phase is not repeatable); MATVIEWS_ROUNDS=n (at
# least 8) sets the number of rounds (20); MATVIEWS_WRITER_UNITS=n the work of each concurrent
# writer (500).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use List::Util qw(max sum0);
use Time::HiRes qw(time);

my $seed = $ENV{MATVIEWS_SEED} // (1_000_003 + int(time())) % 1_000_000_000;
my $rounds = $ENV{MATVIEWS_ROUNDS} // 20;
srand($seed);
note("seed=$seed (MATVIEWS_SEED=$seed repeats this run)");
my $started = time();
my $json = JSON::PP->new;

my $node = PostgreSQL::Test::Cluster->new('inc_property');
$node->init;
$node->append_conf('postgresql.conf', qq{
matviews.incremental_max_fraction = 1
max_connections = 20
max_prepared_transactions = 4
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# psql script, ON_ERROR_STOP; dies (with the seed) on an error.
sub run_script {
    my ($what, $script) = @_;
    my ($out, $err) = ('', '');
    my $ret = $node->psql('postgres', $script, stdout => \$out, stderr => \$err, on_error_stop => 1,
                          timeout => $PostgreSQL::Test::Utils::timeout_default);
    die "seed=$seed: $what failed (psql exit $ret): $err\nscript:\n$script\n" if $ret != 0;
    return $out;
}

sub diff_sql {
    # "<rows of the view not in the query> <rows of the query not in the view>"
    my ($v, $q) = @_;
    return qq{SELECT (SELECT count(*) FROM (SELECT * FROM $v EXCEPT ALL SELECT * FROM ($q) q) a) || ' '
                  || (SELECT count(*) FROM (SELECT * FROM ($q) q EXCEPT ALL SELECT * FROM $v) b)};
}

sub diff_sample {
    # A few differing rows both ways, for a failure message.
    my ($v, $q) = @_;
    return sql(qq{SELECT 'in view, not in query: ' || x::text FROM (SELECT * FROM $v EXCEPT ALL SELECT * FROM ($q) q LIMIT 5) x
                  UNION ALL
                  SELECT 'in query, not in view: ' || y::text FROM (SELECT * FROM ($q) q EXCEPT ALL SELECT * FROM $v LIMIT 5) y});
}

sub refresh_json {
    my ($v) = @_;
    return $json->decode(sql(qq{SELECT matviews.refresh('$v', row_count_strategy => 'exact')}));
}

sub create_view {
    # The decoded response of matviews.create.
    my ($name, $query, @key) = @_;
    my $keys = join(', ', map { "'$_'" } @key);
    return $json->decode(sql(qq{SELECT matviews.create('$name', \$q\$$query\$q\$, refresh_strategy => 'incremental',
                                                       unique_index_columns => ARRAY[$keys])}));
}

sub refused {
    # Whether matviews.create refused the shape as outside the incremental class (0A000).
    my ($r) = @_;
    return $r->{status} eq 'error' && ($r->{error}{sqlstate} // '') eq '0A000';
}

sql(q{CREATE EXTENSION matviews});

############################################################################################
# 0. A LEFT JOIN that uses a column of its nullable side in the view's key, GROUP BY or WHERE.
# A change on the nullable side makes the null-extended row of a preserved row appear (the last
# matching row deleted) or disappear (the first matching row inserted); that row has another key
# (or is filtered differently) than the matched rows the change gives.

sql(q{
CREATE TABLE nk_c (id int PRIMARY KEY, name text, region text);
CREATE TABLE nk_o (id int PRIMARY KEY, cust int, amount numeric);
INSERT INTO nk_c SELECT g, 'c' || g, 'r' || g % 3 FROM generate_series(1, 20) g;
INSERT INTO nk_o SELECT g, g % 10 + 1, g FROM generate_series(1, 50) g;
INSERT INTO nk_o VALUES (1000, 99, 5);   -- an order without customer
});
my %nk = (
    nk_key => [ q{SELECT c.id AS cust_id, o.id AS order_id, o.amount FROM nk_c c LEFT JOIN nk_o o ON o.cust = c.id},
                'cust_id', 'order_id' ],
    nk_anti => [ q{SELECT c.id, c.name FROM nk_c c LEFT JOIN nk_o o ON o.cust = c.id WHERE o.id IS NULL}, 'id' ],
    nk_group => [ q{SELECT o.cust, c.region, count(*) AS n, sum(o.amount) AS total FROM nk_o o LEFT JOIN nk_c c ON c.id = o.cust
                    GROUP BY o.cust, c.region}, 'cust', 'region' ],
);
# Each must be either refused (0A000: outside the supported class) or refreshed correctly.
for my $v (sort keys %nk) {
    my ($q, @key) = @{ $nk{$v} };
    my $r = create_view($v, $q, @key);
    if (refused($r)) {
        pass("nullable side: $v is refused as not incremental ($r->{error}{detail})");
        delete $nk{$v};
        next;
    }
    is($r->{status}, 'created', "nullable side: $v created") or diag($json->encode($r));
    is(refresh_json($v)->{response}{fallback}, 'first refresh', "nullable side: $v first refresh is full");
}
# Customer 15 gets its first order, customer 3 loses its last ones, order 1000's customer 99 appears.
sql(q{INSERT INTO nk_o VALUES (100, 15, 1); DELETE FROM nk_o WHERE cust = 3; INSERT INTO nk_c VALUES (99, 'c99', 'r1');});
for my $v (sort keys %nk) {
    my ($q) = @{ $nk{$v} };
    my $r = refresh_json($v);
    is($r->{status}, 'updated', "nullable side: $v refreshed");
    ok(!defined $r->{response}{fallback}, "nullable side: $v took the incremental path");
    my $d = sql(diff_sql($v, $q));
    is($d, '0 0', "nullable side: $v equals its query after the first matching row was inserted and the last deleted")
      or diag("view $v: " . $json->encode($r->{response}) . "\n" . diff_sample($v, $q));
}

############################################################################################
# 0b. Writes the capture triggers do not see. A refresh must not take the incremental path over a
# log that misses committed changes: either the change is captured, or the refresh is a full one.

sql(q{
CREATE TABLE bp_replica (id int PRIMARY KEY, v int);
CREATE TABLE bp_disabled (id int PRIMARY KEY, v int);
CREATE TABLE bp_one (id int PRIMARY KEY, v int);
INSERT INTO bp_replica SELECT g, g FROM generate_series(1, 20) g;
INSERT INTO bp_disabled SELECT g, g FROM generate_series(1, 20) g;
INSERT INTO bp_one SELECT g, g FROM generate_series(1, 20) g;
});
for my $t (qw(bp_replica bp_disabled bp_one)) {
    is(create_view("${t}_v", "SELECT id, v FROM $t", 'id')->{status}, 'created', "bypass: ${t}_v created");
    refresh_json("${t}_v");
}
# session_replication_role = replica: how logical replication's apply worker (and some bulk
# loaders) write; triggers enabled the default way (ENABLE ORIGIN) do not fire.
sql(q{SET session_replication_role = replica; UPDATE bp_replica SET v = -1 WHERE id = 1; RESET session_replication_role;});
my $bp = refresh_json('bp_replica_v');
is(sql(diff_sql('bp_replica_v', 'SELECT id, v FROM bp_replica')), '0 0',
    'bypass: a change written with session_replication_role = replica (as logical replication applies changes) is in the view after the next refresh')
  or diag('the refresh: ' . $json->encode($bp->{response}) . "\n" . diff_sample('bp_replica_v', 'SELECT id, v FROM bp_replica'));
# ALTER TABLE ... DISABLE TRIGGER ALL, a change, ENABLE TRIGGER ALL (what pg_restore
# --disable-triggers does): at the refresh every capture trigger is there and enabled again.
sql(q{ALTER TABLE bp_disabled DISABLE TRIGGER ALL; UPDATE bp_disabled SET v = -1 WHERE id = 1;
      ALTER TABLE bp_disabled ENABLE TRIGGER ALL;});
$bp = refresh_json('bp_disabled_v');
is(sql(diff_sql('bp_disabled_v', 'SELECT id, v FROM bp_disabled')), '0 0',
    'bypass: a change written while the capture triggers were disabled (then enabled again) is in the view after the next refresh')
  or diag('the refresh: ' . $json->encode($bp->{response}) . "\n" . diff_sample('bp_disabled_v', 'SELECT id, v FROM bp_disabled'));
# One capture trigger disabled, and left so: the refresh must not take the incremental path (it
# fails with 55000, or falls back); once the trigger is enabled again, the next refresh is correct
# (the change made meanwhile is not in the log).
sql(q{ALTER TABLE bp_one DISABLE TRIGGER matviews_capture_upd; UPDATE bp_one SET v = -1 WHERE id = 1;});
$bp = refresh_json('bp_one_v');
ok(($bp->{status} eq 'error' && ($bp->{error}{sqlstate} // '') eq '55000') || defined $bp->{response}{fallback},
    'bypass: with a capture trigger disabled, the refresh fails (55000) or falls back, never incremental')
  or diag($json->encode($bp));
note('bypass: with a capture trigger disabled, the refresh: '
    . ($bp->{status} eq 'error' ? "$bp->{error}{sqlstate} $bp->{error}{message}" : "fallback $bp->{response}{fallback}"));
is(sql(diff_sql('bp_one_v', 'SELECT id, v FROM bp_one')), $bp->{status} eq 'error' ? '1 1' : '0 0',
    'bypass: ... and the view is correct if it succeeded, untouched if it failed');
sql(q{UPDATE bp_one SET v = -2 WHERE id = 2; ALTER TABLE bp_one ENABLE TRIGGER matviews_capture_upd; UPDATE bp_one SET v = -3 WHERE id = 3;});
$bp = refresh_json('bp_one_v');
is($bp->{status}, 'updated', 'bypass: the trigger enabled again, the refresh succeeds') or diag($json->encode($bp));
is(sql(diff_sql('bp_one_v', 'SELECT id, v FROM bp_one')), '0 0',
    'bypass: ... and the view has every change, also those made while the trigger was disabled')
  or diag('the refresh: ' . $json->encode($bp->{response}) . "\n" . diff_sample('bp_one_v', 'SELECT id, v FROM bp_one'));

############################################################################################
# 1. The schema and the views.

sql(q{
-- custs has a dropped column (the row images have a hole), an array column.
CREATE TABLE custs (id int PRIMARY KEY, gone int, name text NOT NULL, region text, score float8, since timestamp, tags text[],
                    due date);
ALTER TABLE custs DROP COLUMN gone;
INSERT INTO custs
  SELECT g, 'cust ' || g, (ARRAY['north', 'south', 'east', 'west', NULL])[1 + g % 5], ((g * 37 % 100) / 7.0)::float8 / 3,
         timestamp '2024-01-01' + g * interval '1 day 1 hour', ARRAY['t' || g % 3, 'a,b', NULL],
         date '2024-01-01' + g % 40
  FROM generate_series(1, 100) g;
-- cust 101..108 are orphans (no such customer), some are NULL.
-- orders has a mixed-case column, a jsonb column and a stored generated column.
CREATE TABLE orders (id int PRIMARY KEY, cust int, amount numeric(10,2), status text, placed timestamp,
                     "Note" text, meta jsonb, cents numeric GENERATED ALWAYS AS (amount * 100) STORED);
INSERT INTO orders
  SELECT g, CASE WHEN g % 23 = 0 THEN NULL ELSE 1 + (g * 7919) % 108 END, ((g * 104729) % 10000) / 100.0,
         (ARRAY['open', 'closed', 'void', 'open', NULL])[1 + g % 5],
         timestamp '2024-03-01' + (g * 3643 % 1000) * interval '1 hour',
         CASE WHEN g % 7 = 0 THEN 'note ' || g END, jsonb_build_object('g', g, 'l', jsonb_build_array(g % 3, 'x'))
  FROM generate_series(1, 900) g;
-- employees lives in a schema whose name needs quoting, and has an interval column.
CREATE SCHEMA "HR";
CREATE TABLE "HR".employees (id int PRIMARY KEY, name text NOT NULL, manager int, dept int, salary numeric(10,2),
                             dur interval);
INSERT INTO "HR".employees
  SELECT g, 'emp ' || g, CASE WHEN g <= 3 THEN NULL ELSE (g - 1) / 4 END, g % 7, 1000 + (g * 7717 % 5000),
         g * interval '1 day 3 hours 7.5 seconds'
  FROM generate_series(1, 200) g;
CREATE TABLE meas (id int NOT NULL, kind text NOT NULL, sensor int, val numeric(12,3), w float8, ts timestamp,
                   raw bytea, PRIMARY KEY (id, kind)) PARTITION BY LIST (kind);
CREATE TABLE meas_a PARTITION OF meas FOR VALUES IN ('a');
CREATE TABLE meas_b PARTITION OF meas FOR VALUES IN ('b');
CREATE TABLE meas_rest PARTITION OF meas DEFAULT;
INSERT INTO meas
  SELECT g, (ARRAY['a', 'b', 'c', 'd'])[1 + g % 4], 1 + (g / 4) * 31 % 40, (g * 7907 % 100000) / 1000.0,
         (g * 13 % 97) / 3.0, timestamp '2024-05-01' + g * interval '17 minutes', decode(md5(g::text), 'hex')
  FROM generate_series(1, 500) g;
CREATE TABLE channels (id int PRIMARY KEY, organization_id int, name text);
INSERT INTO channels SELECT g, 1 + g % 5, 'chan ' || g FROM generate_series(1, 30) g;
CREATE TABLE users (id int PRIMARY KEY, organization_id int, name text);
INSERT INTO users SELECT g, 1 + (g * 3) % 5, 'user ' || g FROM generate_series(1, 40) g;
CREATE TABLE user_notification_preferences (
    id serial PRIMARY KEY, user_id int NOT NULL, settable_type text NOT NULL, settable_id int NOT NULL,
    notification_type text NOT NULL, notification_frequency text,
    UNIQUE (user_id, settable_type, settable_id, notification_type));
INSERT INTO user_notification_preferences (user_id, settable_type, settable_id, notification_type, notification_frequency)
  SELECT u, 'Channel', c, t, (ARRAY['instant', 'daily', 'never', NULL])[1 + (u + c) % 4]
  FROM generate_series(1, 40) u, generate_series(1, 30) c, unnest(ARRAY['new_channel_message', 'mention']) t
  WHERE (u * 7 + c * 3 + length(t)) % 9 = 0;
INSERT INTO user_notification_preferences (user_id, settable_type, settable_id, notification_type, notification_frequency)
  SELECT u, 'Organization', o, t, (ARRAY['weekly', 'instant'])[1 + (u + o) % 2]
  FROM generate_series(1, 40) u, generate_series(1, 5) o, unnest(ARRAY['new_channel_message', 'mention']) t
  WHERE (u + o + length(t)) % 3 = 0;
-- Plain inheritance: a parent with rows of its own and a child.
CREATE TABLE events (id int NOT NULL, kind text, val int);
CREATE TABLE events_x (extra text) INHERITS (events);
INSERT INTO events SELECT g, 'parent', g % 17 FROM generate_series(1, 100) g;
INSERT INTO events_x SELECT g, 'child', g % 13, 'x' || g FROM generate_series(101, 200) g;
-- Addresses of customers: none, one or several per customer, some of missing customers.
CREATE TABLE addrs (id int PRIMARY KEY, cust_id int, city text);
INSERT INTO addrs SELECT g, 1 + (g * 13) % 110, (ARRAY['Oslo', 'Lima', 'Pune', NULL, 'Kyiv'])[1 + (g / 5) % 5]
  FROM generate_series(1, 150) g;
-- Notes of customers, with foreign key actions (the cascaded statements must be captured), and
-- a count per customer maintained by a user trigger (its nested statements must be captured).
-- A note's customer has the parity of the note's id (the concurrent writers keep to one parity).
CREATE TABLE cust_notes (id int PRIMARY KEY, cust_id int NOT NULL REFERENCES custs ON DELETE CASCADE ON UPDATE CASCADE,
                         note text);
CREATE TABLE note_counts (cust_id int PRIMARY KEY, n int NOT NULL);
CREATE FUNCTION count_notes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE note_counts SET n = n - 1 WHERE cust_id = OLD.cust_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO note_counts VALUES (NEW.cust_id, 1) ON CONFLICT (cust_id) DO UPDATE SET n = note_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER count_notes AFTER INSERT OR UPDATE OR DELETE ON cust_notes FOR EACH ROW EXECUTE FUNCTION count_notes();
INSERT INTO cust_notes SELECT g, 1 + (g - 1) % 100, 'note ' || g FROM generate_series(1, 150) g;
CREATE VIEW city_addrs AS SELECT id, cust_id, upper(city) AS city FROM addrs WHERE city IS NOT NULL;
CREATE VIEW open_orders AS
  SELECT o.id, o.cust, o.amount, c.name, c.region FROM orders o JOIN custs c ON c.id = o.cust WHERE o.status = 'open';
});

# One branch of the notification-preferences view.
sub notif_branch {
    my ($type) = @_;
    return qq{SELECT users.id AS user_id, '$type' AS notification_type,
       COALESCE(cu.notification_frequency, ou.notification_frequency, 'desktop') AS notification_frequency,
       channels.id AS channel_id
FROM channels JOIN users ON channels.organization_id = users.organization_id
LEFT JOIN user_notification_preferences cu ON cu.settable_id = channels.id AND cu.settable_type = 'Channel' AND cu.notification_type = '$type' AND cu.user_id = users.id
LEFT JOIN user_notification_preferences ou ON ou.settable_id = channels.organization_id AND ou.settable_type = 'Organization' AND ou.notification_type = '$type' AND ou.user_id = users.id};
}

# name, key, query, fan-out: the most keys one changed row of a table can affect (old and new
# image), from the shape and the current data ($s: opc orders per customer, rpm reports per
# manager, cpo channels per organization, upo users per organization, at most).
my @views = (
    [ filt => [qw(id)],
      q{SELECT id, cust, amount, placed, amount * 2 AS doubled, "Note", meta, cents FROM orders
        WHERE status = 'open' AND amount > 20 ORDER BY id},
      sub { { orders => 2 } } ],
    [ ij => [qw(id)],
      q{SELECT o.id, o.amount, c.name, c.region, c.score FROM orders o JOIN custs c ON c.id = o.cust
        WHERE c.region IS DISTINCT FROM 'west'},
      sub { { orders => 2, custs => 2 * $_[0]{opc} } } ],
    [ lj => [qw(id)],
      q{SELECT o.id, o.amount, o.status, c.name, c.region, c.since, c.tags FROM orders o LEFT JOIN custs c ON c.id = o.cust},
      sub { { orders => 2, custs => 2 * $_[0]{opc} } } ],
    [ lj_coalesce => [qw(id)],
      q{SELECT o.id, COALESCE(c.region, 'unknown') AS region, COALESCE(c.name, 'cust ' || o.cust::text, 'nobody') AS cname,
               COALESCE(c.score, -1) AS score
        FROM orders o LEFT JOIN custs c ON c.id = o.cust WHERE o.amount >= 10},
      sub { { orders => 2, custs => 2 * $_[0]{opc} } } ],
    [ lj_nullable_key => [qw(cust_id order_id)],
      q{SELECT c.id AS cust_id, o.id AS order_id, o.amount FROM custs c LEFT JOIN orders o ON o.cust = c.id AND o.status = 'open'},
      sub { { orders => 2, custs => 2 * $_[0]{opc} + 2 } } ],
    [ agg_join => [qw(cust region)],
      q{SELECT o.cust, c.region, count(*) AS n, sum(o.amount) AS total, min(o.amount) AS lo, max(o.placed) AS last_placed,
               max(c.score) AS score
        FROM orders o JOIN custs c ON c.id = o.cust GROUP BY o.cust, c.region},
      sub { { orders => 4, custs => 2 } } ],
    [ gn_lj => [qw(cust region)],
      q{SELECT o.cust, c.region, count(*) AS n, sum(o.amount) AS total FROM orders o LEFT JOIN custs c ON c.id = o.cust
        GROUP BY o.cust, c.region},
      sub { { orders => 4, custs => 2 } } ],
    [ hav => [qw(cust status)],
      q{SELECT cust, status, count(*) AS n, sum(amount) AS total, max(amount) AS hi FROM orders
        GROUP BY cust, status HAVING count(*) >= 2},
      sub { { orders => 2 } } ],
    [ dist => [qw(cust status)],
      q{SELECT DISTINCT cust, status FROM orders WHERE amount > 5},
      sub { { orders => 2 } } ],
    [ anti => [qw(id)],
      q{SELECT c.id, c.name FROM custs c LEFT JOIN orders o ON o.cust = c.id AND o.status = 'void' AND o.amount > 80
        WHERE o.id IS NULL},
      sub { { orders => 2, custs => 2 } } ],
    [ uni => [qw(kind id)],
      q{SELECT id, 'order' AS kind, amount::text AS label, cust AS ref FROM orders WHERE status IS DISTINCT FROM 'void'
        UNION ALL
        SELECT id, 'cust', name, NULL FROM custs WHERE region IS NOT NULL},
      sub { { orders => 2, custs => 2 } } ],
    [ selfj => [qw(id)],
      q{SELECT e.id, e.name, m.id AS manager_id, m.name AS manager_name, e.salary - m.salary AS diff, e.dur + m.dur AS dur
        FROM "HR".employees e JOIN "HR".employees m ON e.manager = m.id},
      sub { { employees => 2 + 2 * $_[0]{rpm} } } ],
    [ emp_lj => [qw(id)],
      q{SELECT e.id, e.dept, COALESCE(m.name, '(no manager)') AS manager_name, m.dept AS manager_dept
        FROM "HR".employees e LEFT JOIN "HR".employees m ON m.id = e.manager},
      sub { { employees => 2 + 2 * $_[0]{rpm} } } ],
    [ part_agg => [qw(sensor kind)],
      q{SELECT sensor, kind, count(*) AS n, sum(val) AS total, max(w) AS wmax, min(ts) AS first_ts FROM meas
        GROUP BY sensor, kind},
      sub { { meas => 2 } } ],
    [ part_rows => [qw(id kind)],
      q{SELECT m.id, m.kind, m.sensor, m.val, m.ts, m.raw FROM meas m WHERE m.val > 10 OR m.val IS NULL},
      sub { { meas => 2 } } ],
    # Keys of float, text, timestamp and numeric columns: the changed rows' images must read back
    # exactly (NaN, infinities, quotes, newlines, long text).
    [ dist_score => [qw(score region)],
      q{SELECT DISTINCT score, region FROM custs},
      sub { { custs => 2 } } ],
    [ by_name => [qw(name)],
      q{SELECT c.name, count(o.id) AS n, sum(o.cents) AS cents FROM custs c JOIN orders o ON o.cust = c.id GROUP BY c.name},
      sub { { custs => 2, orders => 4 } } ],
    [ by_hour => [qw(hour)],
      q{SELECT date_trunc('hour', placed) AS hour, count(*) AS n, max(amount) AS hi FROM orders GROUP BY 1},
      sub { { orders => 2 } } ],
    [ by_bucket => [qw(bucket status)],
      q{SELECT round(amount / 10) AS bucket, status, count(*) AS n, min(placed) AS first FROM orders GROUP BY 1, 2},
      sub { { orders => 2 } } ],
    # Outer joins whose nullable side gives key columns: chained, RIGHT, self, DISTINCT, a
    # COALESCEd group key, in a UNION ALL branch, a plain view on the nullable side, HAVING.
    [ lj_chain => [qw(order_id cust_id addr_id)],
      q{SELECT o.id AS order_id, c.id AS cust_id, a.id AS addr_id, a.city, c.region
        FROM orders o LEFT JOIN custs c ON c.id = o.cust LEFT JOIN addrs a ON a.cust_id = c.id},
      sub { { orders => 2 * ($_[0]{apc} + 1), custs => 2 * $_[0]{opc} * ($_[0]{apc} + 1), addrs => 4 * $_[0]{opc} + 4 } } ],
    [ rj => [qw(cust_id order_id)],
      q{SELECT c.id AS cust_id, o.id AS order_id, o.status FROM orders o RIGHT JOIN custs c ON c.id = o.cust AND o.amount > 50},
      sub { { orders => 4, custs => 2 * $_[0]{opc} + 2 } } ],
    [ self_lj_key => [qw(id mid)],
      q{SELECT e.id, m.id AS mid, m.name AS mname FROM "HR".employees e LEFT JOIN "HR".employees m ON m.id = e.manager},
      sub { { employees => 4 + 4 * $_[0]{rpm} } } ],
    [ dist_lj => [qw(region status)],
      q{SELECT DISTINCT c.region, o.status FROM orders o LEFT JOIN custs c ON c.id = o.cust},
      sub { { orders => 4, custs => 2 * $_[0]{opc} } } ],
    [ grp_coalesce => [qw(region status)],
      q{SELECT COALESCE(c.region, 'none') AS region, o.status, count(*) AS n, sum(o.amount) AS total
        FROM orders o LEFT JOIN custs c ON c.id = o.cust GROUP BY 1, 2},
      sub { { orders => 4, custs => 2 * $_[0]{opc} } } ],
    [ uni_lj => [qw(id kind sub)],
      q{SELECT o.id, 'o' AS kind, NULL::int AS sub, c.name AS label FROM orders o LEFT JOIN custs c ON c.id = o.cust
        UNION ALL
        SELECT c.id, 'a', a.id, a.city FROM custs c LEFT JOIN addrs a ON a.cust_id = c.id},
      sub { { orders => 2, custs => 2 * $_[0]{opc} + 2 * $_[0]{apc} + 2, addrs => 4 } } ],
    [ lj_view_nullable => [qw(cust_id addr_id)],
      q{SELECT c.id AS cust_id, v.id AS addr_id, v.city FROM custs c LEFT JOIN city_addrs v ON v.cust_id = c.id},
      sub { { custs => 2 * $_[0]{apc} + 2, addrs => 4 } } ],
    [ agg_chain => [qw(region city)],
      q{SELECT c.region, a.city, count(*) AS n, sum(o.amount) AS total
        FROM orders o JOIN custs c ON c.id = o.cust LEFT JOIN addrs a ON a.cust_id = c.id
        GROUP BY c.region, a.city HAVING count(*) > 1},
      sub { { orders => 2 * ($_[0]{apc} + 1), custs => 4 * ($_[0]{apc} + 1), addrs => 4 } } ],
    [ notes_v => [qw(id)],
      q{SELECT n.id, n.note, c.name, c.region FROM cust_notes n JOIN custs c ON c.id = n.cust_id},
      sub { { custs => 2 * $_[0]{npc} + 2, cust_notes => 2 } } ],
    [ note_cnt_v => [qw(id)],
      q{SELECT c.id, c.name, nc.n FROM custs c JOIN note_counts nc ON nc.cust_id = c.id WHERE nc.n > 0},
      sub { { custs => 2, cust_notes => 4 } } ],
    # Output columns whose names need quoting, the key among them.
    [ quoted_v => ['Order Id'],
      q{SELECT o.id AS "Order Id", o.amount AS "Amount $", c.region AS "region (cust)" FROM orders o LEFT JOIN custs c ON c.id = o.cust},
      sub { { orders => 2, custs => 2 * $_[0]{opc} } } ],
    # orders twice: directly and inside the plain view (on the nullable side).
    [ twice_v => [qw(id)],
      q{SELECT o.id, o.amount, oo.name AS open_name FROM orders o LEFT JOIN open_orders oo ON oo.id = o.id},
      sub { { orders => 4, custs => 2 * $_[0]{opc} } } ],
    # A FROM subquery that is a UNION ALL, joined.
    [ subq_v => [qw(id kind)],
      q{SELECT u.id, u.kind, u.val, c.region
        FROM (SELECT id, 'o' AS kind, amount AS val, cust FROM orders WHERE status = 'open'
              UNION ALL SELECT id, 'n', NULL, cust_id FROM cust_notes) u
        LEFT JOIN custs c ON c.id = u.cust},
      sub { { orders => 2, cust_notes => 2, custs => 2 * ($_[0]{opc} + $_[0]{npc}) } } ],
    [ lat_v => [qw(cid oid)],
      q{SELECT c.id AS cid, l.id AS oid, l.amount FROM custs c
        JOIN LATERAL (SELECT o.id, o.amount FROM orders o WHERE o.cust = c.id AND o.amount > 20) l ON true},
      sub { { orders => 2, custs => 2 * $_[0]{opc} } } ],
    # A partition read directly (the rows written through the parent count), inheritance: the
    # parent with its child, ONLY the parent, the child alone.
    [ part_child_v => [qw(id)],
      q{SELECT id, sensor, val FROM meas_a WHERE val > 5 OR val IS NULL},
      sub { { meas => 2 } } ],
    [ inh_all => [qw(id)],
      q{SELECT id, kind, val FROM events WHERE val > 3},
      sub { { events => 2 } } ],
    [ inh_only => [qw(id)],
      q{SELECT id, val FROM ONLY events},
      sub { { events => 2 } } ],
    [ inh_child => [qw(id)],
      q{SELECT id, val, extra FROM events_x},
      sub { { events => 2 } } ],
    [ by_due => [qw(due)],
      q{SELECT c.due, count(*) AS n, min(c.id) AS first FROM custs c GROUP BY c.due},
      sub { { custs => 2 } } ],
    [ via_view => [qw(id)],
      q{SELECT id, cust, amount, name FROM open_orders WHERE amount > 15},
      sub { { orders => 2, custs => 2 * $_[0]{opc} } } ],
    [ notif => [qw(user_id notification_type channel_id)],
      notif_branch('new_channel_message') . "\nUNION ALL\n" . notif_branch('mention'),
      sub { { users => 4 * $_[0]{cpo}, channels => 4 * $_[0]{upo}, prefs => 2 * $_[0]{cpo} + 2 } } ],
);
# The tables each view reads (for the TRUNCATE round).
my %reads = (
    selfj => 'employees', emp_lj => 'employees', part_agg => 'meas', part_rows => 'meas',
    notif => 'notif',
    self_lj_key => 'employees', notes_v => 'orders', note_cnt_v => 'orders', quoted_v => 'orders', twice_v => 'orders',
    subq_v => 'orders', lat_v => 'orders', part_child_v => 'meas_a', inh_all => 'events', inh_only => 'events',
    inh_child => 'events', by_due => 'orders',
    map { $_ => 'orders' } qw(filt ij lj lj_coalesce lj_nullable_key agg_join gn_lj hav dist anti uni via_view dist_score by_name
                              by_hour by_bucket lj_chain rj dist_lj grp_coalesce uni_lj lj_view_nullable agg_chain));

# Shapes outside the brief's class may be refused (0A000); every other must be created.
my %optional = (anti => 1, lat_v => 1);
for my $v (@views) {
    my ($name, $key, $q) = @$v;
    my $r = create_view($name, $q, @$key);
    if ($optional{$name} && refused($r)) {
        note("$name is refused as not incremental: $r->{error}{detail}");
        $v->[0] = undef;
        next;
    }
    is($r->{status}, 'created', "create $name") or BAIL_OUT("seed=$seed: cannot create $name: " . $json->encode($r));
}
@views = grep { defined $_->[0] } @views;
my @names = map { $_->[0] } @views;
my %query = map { $_->[0] => $_->[2] } @views;
my %fan = map { $_->[0] => $_->[3] } @views;
sql(q{ANALYZE});
is(sql(q{SELECT string_agg(tgrelid::regclass::text || ':' || n, ' ' ORDER BY tgrelid::regclass::text COLLATE "C") FROM (
           SELECT tgrelid, count(*) AS n FROM pg_trigger WHERE tgname LIKE 'matviews\_capture\_%' GROUP BY tgrelid) t}),
    join(' ', map { "$_:4" } sort qw("HR".employees addrs channels cust_notes custs events events_x meas meas_a meas_b meas_rest nk_c nk_o note_counts orders users
                                      user_notification_preferences bp_disabled bp_one bp_replica)),
    'the four capture triggers are on every base table, through the plain view and on every partition');

# The first refresh of each: a full one.
my @first_bad;
for my $v (@names) {
    my $r = refresh_json($v);
    push @first_bad, "$v: " . $json->encode($r)
      unless $r->{status} eq 'updated' && ($r->{response}{fallback} // '') eq 'first refresh';
}
is(scalar(@first_bad), 0, 'the first refresh of every view is a full one (fallback "first refresh")')
  or diag("seed=$seed\n" . join("\n", @first_bad));
note('view rows: ' . join(' ', map { "$_ " . sql("SELECT count(*) FROM $_") } @names));

############################################################################################
# The random DML.

my %known;    # table => [ids]: every id ever inserted (some deleted since)
$known{orders}    = [ 1 .. 900 ];
$known{custs}     = [ 1 .. 100 ];
$known{employees} = [ 1 .. 200 ];
$known{meas}      = [ 1 .. 500 ];
$known{channels}  = [ 1 .. 30 ];
$known{users}     = [ 1 .. 40 ];
$known{addrs}     = [ 1 .. 150 ];
$known{cust_notes} = [ 1 .. 150 ];
$known{events}    = [ 1 .. 200 ];
my %next_id = (orders => 10_000, custs => 1_000, employees => 1_000, meas => 10_000, channels => 500, users => 500, addrs => 1_000, cust_notes => 1_000, events => 1_000);

sub pick { return $_[ int(rand(@_)) ]; }
sub chance { return rand() < $_[0]; }

# A generator context: the parity of the rows a writer owns (undef: any row), and its id offset.
sub ctx_new { my ($parity) = @_; return { parity => $parity, off => defined $parity ? 100_000 * (1 + $parity) : 0 }; }

sub id_of {
    # An id of a table that may exist, in the context's parity.
    my ($c, $t) = @_;
    for (1 .. 20) {
        my $id = pick(@{ $known{$t} });
        return $id if !defined $c->{parity} || $id % 2 == $c->{parity};
    }
    return defined $c->{parity} ? 2 + $c->{parity} : 1;
}

sub two_ids {
    # Two different ids that may exist.
    my ($c, $t) = @_;
    my $a = id_of($c, $t);
    my $b = id_of($c, $t);
    for (1 .. 20) { last if $b != $a; $b = id_of($c, $t); }
    $b = $a + 2 if $b == $a;
    return ($a, $b);
}

sub new_id {
    my ($c, $t) = @_;
    my $id;
    do { $id = $c->{off} + $next_id{$t}++ } while (defined $c->{parity} && $id % 2 != $c->{parity});
    push @{ $known{$t} }, $id;
    return $id;
}

sub par {
    # " AND <col> % 2 = p" for a writer, to keep to its own rows.
    my ($c, $col) = @_;
    return defined $c->{parity} ? " AND $col % 2 = $c->{parity}" : '';
}

sub lit { my ($v) = @_; return 'NULL' unless defined $v; $v =~ s/'/''/g; return "'$v'"; }
sub amount { my $r = rand(); return $r < 0.04 ? 'NULL' : $r < 0.07 ? q{'NaN'} : sprintf('%.2f', rand(100)); }
sub a_cust { return chance(0.08) ? 'NULL' : 1 + int(rand(110)); }
sub a_status { return lit(pick('open', 'closed', 'void', 'open', undef)); }
sub a_ts {
    my $r = rand();
    return $r < 0.02 ? q{'infinity'} : $r < 0.03 ? q{'-infinity'}
      : sprintf("timestamp '2024-03-01' + interval '%d minutes %d.%06d seconds'", int(rand(200_000)), int(rand(60)),
                int(rand(1_000_000)));
}
sub a_region { return lit(pick('north', 'south', 'east', 'west', undef, 'central')); }
sub a_kind { return lit(pick('a', 'b', 'c', 'd')); }
# Values whose text form is hard to read back exactly.
sub a_name {
    my $r = rand();
    return sprintf(q{'cust %d'}, int(rand(1000))) if $r < 0.6;
    return pick(q{'O''Brien'}, qq{'tab\there'}, qq{'new\nline'}, q{'back\slash \\N'}, q{'quote"d {a,b}'},
                q{'ünïcödé ☃ 𝄞'}, q{''}, q{repeat('long ', 1000)}, q{'NULL'}, q{' padded '});
}
sub a_score {
    my $r = rand();
    return 'NULL' if $r < 0.1;
    return pick(q{'NaN'}, q{'Infinity'}, q{'-Infinity'}, '1e-300', '0.1::float8 + 0.2::float8', '-0.0::float8') if $r < 0.25;
    return sprintf('(%d / 7.0)::float8 / 3', int(rand(1000)));
}
sub a_tags { return pick('NULL', q{ARRAY['t1', 'a,b']}, q{ARRAY['x"y', NULL, '{}']}, q{'{}'::text[]}); }
sub a_meta { return pick('NULL', q{'{"k": [1, 2.50, null], "s": "a\"b"}'}, q{'[]'}, q{'"just text"'}, q{'{"n": 1e3}'}); }

sub order_row {
    my ($id) = @_;
    return sprintf('(%d, %s, %s, %s, %s, %s, %s)', $id, a_cust(), amount(), a_status(), a_ts(),
                   chance(0.3) ? a_name() : 'NULL', a_meta());
}

# Each statement: [sql, table counted, factor] (rows changed = factor * ROW_COUNT).
my %gen = (
    orders => [
        sub { my ($c) = @_; [ 'INSERT INTO orders VALUES ' . order_row(new_id($c, 'orders')), 'orders', 1 ] },
        sub { my ($c) = @_; [ 'INSERT INTO orders VALUES ' . join(', ', map { order_row(new_id($c, 'orders')) } 1 .. 2 + int(rand(3))),
                              'orders', 1 ] },
        sub { my ($c) = @_; my @ids = map { new_id($c, 'orders') } 1 .. 3;
              [ sprintf(q{INSERT INTO orders SELECT id, %s, id %% 97, 'open', %s FROM unnest(ARRAY[%s]) id},
                        a_cust(), a_ts(), join(', ', @ids)), 'orders', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE orders SET amount = amount + %d WHERE id IN (%d, %d)', 1 + int(rand(50)),
                              id_of($c, 'orders'), id_of($c, 'orders')), 'orders', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE orders SET cust = %s, status = %s WHERE id = %d', a_cust(), a_status(),
                              id_of($c, 'orders')), 'orders', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE orders SET %s = NULL WHERE id = %d', pick('cust', 'status', 'amount'),
                              id_of($c, 'orders')), 'orders', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM orders WHERE id IN (%d, %d)', id_of($c, 'orders'), id_of($c, 'orders')),
                              'orders', 1 ] },
        sub { my ($c) = @_; my $a = id_of($c, 'orders');
              [ sprintf(q{UPDATE orders SET status = CASE status WHEN 'open' THEN 'closed' ELSE 'open' END, cust = cust + 1
                          WHERE id BETWEEN %d AND %d%s}, $a, $a + 3, par($c, 'id')), 'orders', 1 ] },
        sub { my ($c) = @_; [ sprintf('INSERT INTO orders VALUES %s ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount, cust = EXCLUDED.cust',
                              order_row(id_of($c, 'orders'))), 'orders', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE orders SET id = %d WHERE id = %d', new_id($c, 'orders'), id_of($c, 'orders')),
                              'orders', 1 ] },
        # COPY, with the rows inline.
        sub { my ($c) = @_;
              [ "COPY orders (id, cust, amount, status, placed, \"Note\") FROM stdin;\n"
                . join('', map { sprintf("%d\t%s\t%s\t%s\t2024-06-%02d 10:00:00\t%s\n", new_id($c, 'orders'),
                                         chance(0.1) ? '\N' : 1 + int(rand(110)), chance(0.1) ? 'NaN' : sprintf('%.2f', rand(100)),
                                         pick('open', 'closed', '\N'), 1 + int(rand(28)), pick('copied', 'tab\\there', '\N')) }
                       1 .. 1 + int(rand(3)))
                . "\\.\n", 'orders', 1 ] },
        # A data-modifying CTE: a delete and an insert in one statement.
        sub { my ($c) = @_; [ sprintf('WITH d AS (DELETE FROM orders WHERE id = %d RETURNING *) '
                                    . 'INSERT INTO orders SELECT %d, cust, amount + 1, status, placed FROM d',
                              id_of($c, 'orders'), new_id($c, 'orders')), 'orders', 2 ] },
    ],
    custs => [
        sub { my ($c) = @_;
              # A new customer, or one of the orphan ids orders point to.
              my $id = chance(0.5) ? new_id($c, 'custs') : 101 + int(rand(8));
              $id = $id + 1 if defined $c->{parity} && $id % 2 != $c->{parity};
              [ sprintf(q{INSERT INTO custs VALUES (%d, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING},
                        $id, a_name(), a_region(), a_score(), a_ts(), a_tags()), 'custs', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE custs SET region = %s WHERE id = %d', a_region(), id_of($c, 'custs')), 'custs', 1 ] },
        sub { my ($c) = @_; [ sprintf(q{UPDATE custs SET name = name || '+', score = %s WHERE id IN (%d, %d)},
                              a_score(), id_of($c, 'custs'), id_of($c, 'custs')), 'custs', 1 ] },
        sub { my ($c) = @_; [ sprintf(q{UPDATE custs SET name = %s, tags = %s WHERE id = %d},
                              a_name(), a_tags(), id_of($c, 'custs')), 'custs', 1 ] },
        sub { my ($c) = @_; [ sprintf(q{UPDATE custs SET due = %s WHERE id IN (%d, %d)},
                              pick('NULL', q{'infinity'}, sprintf(q{date '2024-01-01' + %d}, int(rand(60)))),
                              id_of($c, 'custs'), id_of($c, 'custs')), 'custs', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM custs WHERE id = %d', id_of($c, 'custs')), 'custs', 1 ] },
        # A new primary key (cascading to the notes), of the same parity.
        sub { my ($c) = @_; my $old = id_of($c, 'custs'); my $new;
              do { $new = new_id($c, 'custs') } while ($new % 2 != $old % 2);
              [ sprintf('UPDATE custs SET id = %d WHERE id = %d', $new, $old), 'custs', 1 ] },
        # MERGE: update, delete (cascading to the notes) and insert in one statement.
        sub { my ($c) = @_;
              [ sprintf(q{MERGE INTO custs c USING (VALUES (%d, %s), (%d, %s), (%d, 'west')) v(id, region) ON c.id = v.id
                          WHEN MATCHED AND v.region IS NULL THEN DELETE
                          WHEN MATCHED THEN UPDATE SET region = v.region, name = c.name || '~'
                          WHEN NOT MATCHED THEN INSERT (id, name, region, score) VALUES (v.id, 'merged', v.region, 1.5)},
                        (map { ($_, a_region()) } two_ids($c, 'custs')), new_id($c, 'custs')), 'custs', 1 ] },
    ],
    employees => [
        sub { my ($c) = @_; [ sprintf('UPDATE "HR".employees SET manager = %s WHERE id = %d',
                              chance(0.15) ? 'NULL' : id_of(ctx_new(undef), 'employees'), id_of($c, 'employees')), 'employees', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE "HR".employees SET salary = salary + %d WHERE id IN (%d, %d)', int(rand(500)) - 250,
                              id_of($c, 'employees'), id_of($c, 'employees')), 'employees', 1 ] },
        sub { my ($c) = @_; my $id = new_id($c, 'employees');
              [ sprintf(q{INSERT INTO "HR".employees VALUES (%d, 'emp %d', %s, %d, %d, %s)}, $id, $id,
                        chance(0.1) ? 'NULL' : id_of(ctx_new(undef), 'employees'), int(rand(7)), 1000 + int(rand(5000)),
                        pick('NULL', q{interval '1 year 2 mons -3 days 04:05:06.789'}, q{interval '-3 months'},
                             sprintf(q{interval '%d seconds'}, int(rand(1e6))))), 'employees', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM "HR".employees WHERE id = %d', id_of($c, 'employees')), 'employees', 1 ] },
        sub { my ($c) = @_; [ sprintf(q{UPDATE "HR".employees SET name = name || '*', dept = %s WHERE id IN (%d, %d, %d)},
                              chance(0.2) ? 'NULL' : int(rand(7)), id_of($c, 'employees'), id_of($c, 'employees'),
                              id_of($c, 'employees')), 'employees', 1 ] },
    ],
    meas => [
        sub { my ($c) = @_; [ 'INSERT INTO meas VALUES ' . join(', ', map {
                  sprintf(q{(%d, %s, %d, %.3f, %s, %s, %s)}, new_id($c, 'meas'), a_kind(), 1 + int(rand(42)), rand(100),
                          chance(0.1) ? 'NULL' : a_score(), a_ts(), pick('NULL', q{'\x00ff'::bytea}, q{decode('deadbeef', 'hex')}, q{''::bytea}))
              } 1 .. 1 + int(rand(3))), 'meas', 1 ] },
        sub { my ($c) = @_; my $k = pick('a', 'c', 'd');
              [ sprintf(q{INSERT INTO %s VALUES (%d, '%s', %d, %.3f, %.6f, %s)}, $k eq 'a' ? 'meas_a' : 'meas_rest',
                        new_id($c, 'meas'), $k, 1 + int(rand(40)), rand(100), rand(30), a_ts()), 'meas', 1 ] },
        # Row movement between partitions, through the parent.
        sub { my ($c) = @_; [ sprintf('UPDATE meas SET kind = %s WHERE id = %d', a_kind(), id_of($c, 'meas')), 'meas', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE meas_b SET val = val + 1, w = w * 2 WHERE id IN (%d, %d, %d)',
                              map { id_of($c, 'meas') } 1 .. 3), 'meas', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM %s WHERE id IN (%d, %d)', pick('meas_rest', 'meas_a'),
                              id_of($c, 'meas'), id_of($c, 'meas')), 'meas', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM meas WHERE id = %d', id_of($c, 'meas')), 'meas', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE meas SET sensor = %s, val = %s WHERE id = %d', chance(0.15) ? 'NULL' : 1 + int(rand(40)),
                              chance(0.3) ? 'NULL' : sprintf('%.3f', rand(50)), id_of($c, 'meas')), 'meas', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE meas_a SET sensor = %d, ts = ts + interval \'1 hour\' WHERE id = %d',
                              1 + int(rand(40)), id_of($c, 'meas')), 'meas', 1 ] },
    ],
    events => [
        sub { my ($c) = @_; my $id = new_id($c, 'events');
              [ sprintf(q{INSERT INTO %s VALUES (%d, 'new', %d)}, pick('events', 'events_x'), $id, int(rand(20))), 'events', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE events SET val = val + %d WHERE id IN (%d, %d)', 1 + int(rand(5)),
                              id_of($c, 'events'), id_of($c, 'events')), 'events', 1 ] },
        sub { my ($c) = @_; [ sprintf(q{UPDATE events_x SET val = %d, extra = 'upd' WHERE id = %d}, int(rand(20)),
                              id_of($c, 'events')), 'events', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM %s WHERE id = %d', pick('events', 'ONLY events', 'events_x'),
                              id_of($c, 'events')), 'events', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE ONLY events SET kind = %s WHERE id = %d', lit(pick('p2', undef)),
                              id_of($c, 'events')), 'events', 1 ] },
    ],
    cust_notes => [
        # Only customers of the note's parity (an existing one, else no row).
        sub { my ($c) = @_; my $id = new_id($c, 'cust_notes'); my $cust = id_of($c, 'custs');
              $cust++ if $cust % 2 != $id % 2;
              [ sprintf(q{INSERT INTO cust_notes SELECT %d, id, 'new note' FROM custs WHERE id = %d}, $id, $cust), 'cust_notes', 1 ] },
        sub { my ($c) = @_; [ sprintf(q{UPDATE cust_notes SET note = note || '!' WHERE id IN (%d, %d)},
                              id_of($c, 'cust_notes'), id_of($c, 'cust_notes')), 'cust_notes', 1 ] },
        sub { my ($c) = @_; my $id = id_of($c, 'cust_notes'); my $cust = id_of($c, 'custs');
              $cust++ if $cust % 2 != $id % 2;
              [ sprintf(q{UPDATE cust_notes SET cust_id = %d WHERE id = %d AND EXISTS (SELECT FROM custs WHERE id = %d)},
                        $cust, $id, $cust), 'cust_notes', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM cust_notes WHERE id = %d', id_of($c, 'cust_notes')), 'cust_notes', 1 ] },
    ],
    addrs => [
        sub { my ($c) = @_; my $id = new_id($c, 'addrs');
              [ sprintf('INSERT INTO addrs VALUES (%d, %s, %s)', $id, a_cust(), lit(pick('Oslo', 'Lima', 'Pune', undef, 'Kyiv', 'Baku'))),
                'addrs', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE addrs SET cust_id = %s WHERE id = %d', a_cust(), id_of($c, 'addrs')), 'addrs', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE addrs SET city = %s WHERE id IN (%d, %d)', lit(pick('Oslo', undef, 'Baku')),
                              id_of($c, 'addrs'), id_of($c, 'addrs')), 'addrs', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM addrs WHERE id = %d', id_of($c, 'addrs')), 'addrs', 1 ] },
        sub { my ($c) = @_; [ sprintf('DELETE FROM addrs WHERE cust_id = %d', 1 + int(rand(110))), 'addrs', 1 ] },
    ],
    notif => [
        sub { my ($c) = @_; [ sprintf('UPDATE users SET organization_id = %s WHERE id = %d', chance(0.1) ? 'NULL' : 1 + int(rand(5)),
                              id_of($c, 'users')), 'users', 1 ] },
        sub { my ($c) = @_; [ sprintf('UPDATE channels SET organization_id = %d WHERE id = %d', 1 + int(rand(5)),
                              id_of($c, 'channels')), 'channels', 1 ] },
        sub { my ($c) = @_; my $id = new_id($c, 'users');
              [ sprintf(q{INSERT INTO users VALUES (%d, %d, 'user %d')}, $id, 1 + int(rand(5)), $id), 'users', 1 ] },
        sub { my ($c) = @_; my $id = new_id($c, 'channels');
              [ sprintf(q{INSERT INTO channels VALUES (%d, %d, 'chan %d')}, $id, 1 + int(rand(5)), $id), 'channels', 1 ] },
        sub { my ($c) = @_; my $t = pick('users', 'channels');
              [ sprintf('DELETE FROM %s WHERE id = %d', $t, id_of($c, $t)), $t, 1 ] },
        sub { my ($c) = @_; my $org = chance(0.5);
              [ sprintf(q{INSERT INTO user_notification_preferences (user_id, settable_type, settable_id, notification_type, notification_frequency)
                          VALUES (%d, '%s', %d, %s, %s)
                          ON CONFLICT (user_id, settable_type, settable_id, notification_type)
                          DO UPDATE SET notification_frequency = EXCLUDED.notification_frequency},
                        id_of($c, 'users'), $org ? 'Organization' : 'Channel',
                        $org ? 1 + int(rand(5)) : id_of(ctx_new(undef), 'channels'), lit(pick('new_channel_message', 'mention')),
                        lit(pick('instant', 'daily', 'never', 'weekly', undef))), 'prefs', 1 ] },
        sub { my ($c) = @_; [ sprintf(q{DELETE FROM user_notification_preferences WHERE user_id = %d AND settable_type = '%s'
                                        AND notification_type = %s}, id_of($c, 'users'), pick('Channel', 'Organization'),
                                      lit(pick('new_channel_message', 'mention'))), 'prefs', 1 ] },
        sub { my ($c) = @_; [ sprintf(q{UPDATE user_notification_preferences SET notification_frequency = %s
                                        WHERE user_id = %d AND settable_id = %d},
                                      lit(pick('instant', undef, 'daily')), id_of($c, 'users'), 1 + int(rand(5))), 'prefs', 1 ] },
    ],
);
my @table_weights = ((('orders') x 7), (('custs') x 3), (('employees') x 3), (('meas') x 3), (('notif') x 4), (('addrs') x 2), (('cust_notes') x 2), (('events') x 2));

# A large statement, only ever rolled back (in a transaction or to a savepoint).
sub big_statement {
    my ($c, $truncate_ok) = @_;
    my @big = (
        sprintf('UPDATE orders SET amount = amount * 3, cust = cust + 1 WHERE true%s', par($c, 'id')),
        sprintf('DELETE FROM custs WHERE true%s', par($c, 'id')),
        sprintf(q{UPDATE meas SET kind = 'b' WHERE kind = 'a'%s}, par($c, 'id')),
        sprintf('DELETE FROM user_notification_preferences WHERE true%s', par($c, 'user_id')),
        sprintf('UPDATE "HR".employees SET manager = NULL WHERE true%s', par($c, 'id')),
        sprintf('UPDATE users SET organization_id = 1 WHERE true%s', par($c, 'id')),
    );
    push @big, 'TRUNCATE custs, cust_notes', 'TRUNCATE orders, "HR".employees' if $truncate_ok;
    return pick(@big);
}

sub statement {
    my ($c, $skip) = @_;
    my $t;
    do { $t = pick(@table_weights) } while ($skip && $t eq $skip);
    return pick(@{ $gen{$t} })->($c);
}

sub text_of {
    # A statement's text, terminated (COPY's inline data ends with its own terminator line).
    my ($s) = @_;
    return $s->[0] =~ /\\\.\n\z/ ? $s->[0] : "$s->[0];\n";
}

sub counted {
    # The statement, then the rows it changed (psql's ROW_COUNT) for the round's tally.
    my ($s) = @_;
    return text_of($s) . "\\echo rc $s->[1] $s->[2] :ROW_COUNT\n";
}

# One unit of work: autocommit statement, committed transaction, rolled-back transaction, or
# a committed transaction with a savepoint rolled back inside it.
sub unit {
    my ($c, $skip, $truncate_ok) = @_;
    my $r = rand();
    if ($r < 0.55) {
        return counted(statement($c, $skip));
    }
    if ($r < 0.70) {
        return "BEGIN;\n" . join('', map { counted(statement($c, $skip)) } 1 .. 2 + int(rand(2))) . "COMMIT;\n";
    }
    if ($r < 0.85) {
        return "BEGIN;\n" . join('', map { text_of(statement($c, $skip)) } 1 .. 1 + int(rand(2)))
          . big_statement($c, $truncate_ok) . ";\nROLLBACK;\n";
    }
    return "BEGIN;\n" . counted(statement($c, $skip)) . "SAVEPOINT s1;\n"
      . join('', map { text_of(statement($c, $skip)) } 1 .. 1 + int(rand(2)))
      . (chance(0.5) ? big_statement($c, 0) . ";\n" : '')
      . "ROLLBACK TO SAVEPOINT s1;\n" . counted(statement($c, $skip)) . "COMMIT;\n";
}

sub tally {
    # rows changed per table, from the "rc table factor n" lines.
    my ($out) = @_;
    my %rows;
    for my $line (split /\n/, $out) {
        $rows{$1} += $2 * $3 if $line =~ /^rc (\S+) (\d+) (\d+)$/;
    }
    return \%rows;
}

my $stats_sql = q{SELECT
    (SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM orders WHERE cust IS NOT NULL GROUP BY cust) x) || ' ' ||
    (SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM "HR".employees WHERE manager IS NOT NULL GROUP BY manager) x) || ' ' ||
    (SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM channels GROUP BY organization_id) x) || ' ' ||
    (SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM users GROUP BY organization_id) x) || ' ' ||
    (SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM addrs GROUP BY cust_id) x) || ' ' ||
    (SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM cust_notes GROUP BY cust_id) x)};
sub stats {
    my ($opc, $rpm, $cpo, $upo, $apc, $npc) = split / /, sql($stats_sql);
    return { opc => $opc, rpm => $rpm, cpo => $cpo, upo => $upo, apc => $apc, npc => $npc };
}

# Refreshes every view (one autocommit statement each), returns name => decoded result.
# Settings that change how values print, as the reader of the changed rows' images.
my $refresh_script = "SET DateStyle = 'German, DMY'; SET IntervalStyle = 'sql_standard'; SET extra_float_digits = -2;\n"
    . "SET TimeZone = 'America/St_Johns';\n"
    . join('', map { "SELECT matviews.refresh('$_', row_count_strategy => 'exact');\n" } @names);
sub refresh_all {
    my @lines = split /\n/, run_script('refresh', $refresh_script);
    die "seed=$seed: expected " . scalar(@names) . " refresh results, got " . scalar(@lines) if @lines != @names;
    my %r;
    @r{@names} = map { $json->decode($_) } @lines;
    return \%r;
}

my $check_sql = join("\nUNION ALL\n", map { "SELECT '$_', (" . diff_sql($_, $query{$_}) . ')' } @names);
sub check_all {
    my %d;
    for my $line (split /\n/, sql($check_sql)) {
        my ($v, $diff) = split /\|/, $line;
        $d{$v} = $diff;
    }
    return \%d;
}

# Failures per view and check: [messages].
my %fail;
my @checks = ('status', 'incremental', 'equal', 'keys', 'counts');
sub failed {
    my ($v, $check, $msg) = @_;
    push @{ $fail{$v}{$check} }, $msg;
}

sub check_round {
    # The refresh results of one round against the rules; $expect_fallback: view => regex.
    my ($round, $res, $rows, $st, $expect_fallback) = @_;
    my $diffs = check_all();
    for my $v (@names) {
        my $r = $res->{$v};
        my $resp = $r->{response} // {};
        my $inc = $resp->{incremental} // {};
        my $where = "seed=$seed round $round view $v";
        failed($v, 'status', "$where: status $r->{status}: " . $json->encode($r)) if $r->{status} ne 'updated';
        if (my $re = $expect_fallback->{$v}) {
            failed($v, 'incremental', "$where: expected a fallback matching $re: " . $json->encode($resp))
              unless ($resp->{fallback} // '') =~ $re && $resp->{full_refresh};
        }
        elsif (defined $resp->{fallback}) {
            failed($v, 'incremental', "$where: fell back: $resp->{fallback}");
        }
        else {
            my $f = $fan{$v}->($st);
            my $changed = sum0(map { $rows->{$_} // 0 } keys %$f);
            my $bound = sum0(map { $f->{$_} * ($rows->{$_} // 0) } keys %$f) + 2 * $changed + 10;
            failed($v, 'keys', "$where: keys $inc->{keys} > bound $bound (rows changed: "
                . join(', ', map { "$_ " . ($rows->{$_} // 0) } sort keys %$f) . ')')
              if !defined $inc->{keys} || $inc->{keys} > $bound;
            my $net = ($inc->{inserted} // 0) - ($inc->{deleted} // 0);
            my $rc = ($resp->{row_count_after} // -1) - ($resp->{row_count_before} // -1);
            failed($v, 'counts', "$where: inserted - deleted = $net, row_count_after - row_count_before = $rc: "
                . $json->encode($resp))
              if $net != $rc || grep { !defined $inc->{$_} } qw(changes keys deleted inserted updated);
        }
        if (($diffs->{$v} // '?') ne '0 0') {
            # Only the first difference of a view is described: it stays wrong after that.
            my $n = @{ $fail{$v}{equal} // [] };
            failed($v, 'equal', $n ? "$where: differs ($diffs->{$v})"
                : "$where: differs from its query (view-only, query-only rows: $diffs->{$v}); response "
                  . $json->encode($resp) . "\n" . diff_sample($v, $query{$v}));
        }
    }
}

############################################################################################
# 2 and 3. The rounds; the middle one truncates employees and a partition of meas.

die "MATVIEWS_ROUNDS must be at least 8" if $rounds < 8;
my $truncate_round = int($rounds / 2) + 1;
my $open_round = 3;          # a transaction open across a refresh
my $inside_round = 5;        # refreshes inside writing transactions
my $ddl_round = 7;           # a column added to a base table
my $prepared_round = 9;      # a prepared transaction across a refresh
my (%total_rows, $rolled_back_units, %log_left, @inner_bad);
for my $round (1 .. $rounds) {
    my $st_before = stats();
    my $c = ctx_new(undef);
    my $script = '';
    my %expect;
    # Some rounds write with settings that change how values print; the capture must not care.
    $script .= "SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = -3;\n"
             . "SET bytea_output = 'escape'; SET TimeZone = 'Asia/Kathmandu';\n" if chance(0.3);
    if ($round == $truncate_round) {
        $script .= q{BEGIN;
TRUNCATE "HR".employees;
INSERT INTO "HR".employees SELECT g, 'rehired ' || g, CASE WHEN g <= 2 THEN NULL ELSE g / 3 END, g % 5, 2000 + g FROM generate_series(1, 150) g;
COMMIT;
TRUNCATE meas_b;
};
        %expect = map { $_ => qr/TRUNCATE/ } grep { $reads{$_} eq 'employees' || $reads{$_} eq 'meas' } @names;
        $script .= unit($c, 'employees', 0) for 1 .. 3;
    }
    elsif ($round == $ddl_round) {
        # The views over addrs fall back (the shape of the table changed); the others do not.
        $script .= "ALTER TABLE addrs ADD COLUMN zip text DEFAULT 'z';\n";
        %expect = map { $_ => qr/DDL/ } grep { $query{$_} =~ /\b(addrs|city_addrs)\b/ } @names;
        $script .= unit($c, 'addrs', 0) for 1 .. 3;
    }
    elsif ($round == $prepared_round) {
        # Prepared before a refresh, committed after it (COMMIT PREPARED below).
        $script .= unit($c, undef, 0) for 1 .. 2;
        $script .= "BEGIN;\n" . join('', map { counted(statement($c, undef)) } 1 .. 3) . "PREPARE TRANSACTION 'mv_round';\n";
    }
    elsif ($round == $inside_round) {
        # Committed: the refresh sees the transaction's own rows; they count as not taken in, and
        # the next refresh reads them again. Rolled back: the refresh goes with the transaction.
        my $inner = q{SELECT 'inner ' || v || ' ' || (matviews.refresh(v)->>'status')
                      FROM unnest(ARRAY['ij', 'agg_join', 'notif', 'part_agg', 'by_name']) v;};
        $script .= "BEGIN;\n" . join('', map { counted(pick(@{ $gen{$_} })->($c)) } qw(orders custs notif meas orders))
                 . "$inner\n" . join('', map { counted(pick(@{ $gen{$_} })->($c)) } qw(orders custs meas)) . "COMMIT;\n";
        $script .= "BEGIN;\n" . join('', map { text_of(pick(@{ $gen{$_} })->($c)) } qw(orders custs notif))
                 . "$inner\nROLLBACK;\n";
    }
    else {
        # A rolled-back TRUNCATE is allowed here: it must not make the next refresh a full one.
        $script .= unit($c, undef, 1) for 1 .. 3 + int(rand(6));
    }
    $rolled_back_units += () = $script =~ /ROLLBACK/g;
    my $out = run_script("round $round DML", $script);
    push @inner_bad, map { "round $round: $_" } grep { /^inner / && !/ updated$/ } split /\n/, $out;
    my $rows = tally($out);
    if ($round == $open_round) {
        # A transaction that wrote before a refresh's snapshot and commits after it.
        my $bg = $node->background_psql('postgres');
        my @parts = (
            sprintf(q{BEGIN; WITH u AS (UPDATE orders SET amount = amount + 7, cust = %d WHERE id IN (%d, %d, %d) RETURNING 1)
                      SELECT 'orders ' || count(*) FROM u;}, 1 + int(rand(100)), map { id_of($c, 'orders') } 1 .. 3),
            sprintf(q{WITH u AS (UPDATE custs SET region = 'open-txn' WHERE id IN (%d, %d) RETURNING 1) SELECT 'custs ' || count(*) FROM u;},
                    id_of($c, 'custs'), id_of($c, 'custs')),
        );
        for my $p (@parts) {
            my $o = $bg->query_safe($p);
            $rows->{$1} += $2 if $o =~ /^(\w+) (\d+)$/m;
        }
        my $mid = refresh_all();
        push @inner_bad, map { "round $round, refresh while a writer is open: $_" } grep { $mid->{$_}{status} ne 'updated' } @names;
        my $o = $bg->query_safe(sprintf(q{WITH u AS (DELETE FROM orders WHERE id IN (%d, %d) RETURNING 1) SELECT 'orders ' || count(*) FROM u;},
                                        id_of($c, 'orders'), id_of($c, 'orders')));
        $rows->{$1} += $2 if $o =~ /^(\w+) (\d+)$/m;
        $bg->query_safe('COMMIT');
        $bg->quit;
    }
    if ($round == $prepared_round) {
        my $mid = refresh_all();
        push @inner_bad, map { "round $round, refresh while a transaction is prepared: $_" }
            grep { $mid->{$_}{status} ne 'updated' } @names;
        sql(q{COMMIT PREPARED 'mv_round'});
    }
    $total_rows{$_} += $rows->{$_} for keys %$rows;
    my $res = refresh_all();
    my $st_after = stats();
    my %st = map { $_ => max($st_before->{$_}, $st_after->{$_}) } keys %$st_before;
    check_round($round, $res, $rows, \%st, \%expect);
    my $left = sql(q{SELECT count(*) FROM matviews.changes});
    $log_left{$round} = $left if $left ne '0';
}
is(join("\n", @inner_bad), '',
    'refreshes inside writing transactions, while a writer is open and while a transaction is prepared return status updated');
note(sprintf('rounds: %d, rows changed in committed statements: %s; %d rolled-back transactions or savepoints',
    $rounds, join(', ', map { "$_ $total_rows{$_}" } sort keys %total_rows), $rolled_back_units));
ok($total_rows{orders} && $total_rows{custs} && $total_rows{meas} && $total_rows{employees}, 'the rounds changed rows of every table');
is(join(', ', map { "round $_: $log_left{$_}" } sort { $a <=> $b } keys %log_left), '',
    "matviews.changes is empty after every round's refreshes (seed=$seed)");

############################################################################################
# 4. Concurrent writers.

my $writer_units = $ENV{MATVIEWS_WRITER_UNITS} // 500;
my @writers;
for my $w (0, 1) {
    my $c = ctx_new($w);
    my $script = "SET DateStyle = 'Postgres, MDY'; SET IntervalStyle = 'postgres_verbose'; SET extra_float_digits = 0;\n"
               . "SET bytea_output = 'escape'; SET TimeZone = 'Pacific/Chatham';\n";
    for my $i (1 .. $writer_units) {
        $script .= unit($c, undef, 0);
        $script .= "SELECT pg_sleep(0.01);\n" if $i % 2 == 0;
    }
    my $file = $node->basedir . "/writer_$w.sql";
    open my $f, '>', $file or die "$file: $!";
    print $f $script;
    close $f;
    my %h = (out => '', err => '');
    $h{h} = IPC::Run::start(
        [ $node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
          '-d', $node->connstr('postgres') . " application_name=writer_$w", '-f', $file ],
        '>', \$h{out}, '2>', \$h{err}, IPC::Run::timeout(120));
    push @writers, \%h;
}
# A second refresher, in its own session, refreshes every other view over and over while the
# main session refreshes the rest: refreshes of different views reading the same tables (and
# deleting the log rows all of them took in) run at the same time. It stops when told to.
my @second = @names[ grep { $_ % 2 } 0 .. $#names ];
my %second = map { $_ => 1 } @second;
my @main_views = grep { !$second{$_} } @names;
sql(q{CREATE TABLE refresher_ctl (stop boolean NOT NULL); INSERT INTO refresher_ctl VALUES (false)});
my $pass = join('', map { "SELECT '$_ ' || (matviews.refresh('$_')->>'status');\n" } reverse @second)
    . "SELECT stop FROM refresher_ctl \\gset\n\\if :stop\n\\q\n\\endif\n";
my $rfile = $node->basedir . '/refresher.sql';
open my $rf, '>', $rfile or die "$rfile: $!";
print $rf "SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3;\n", $pass x 500;
close $rf;
my %refresher = (out => '', err => '');
$refresher{h} = IPC::Run::start(
    [ $node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
      '-d', $node->connstr('postgres') . ' application_name=refresher', '-f', $rfile ],
    '>', \$refresher{out}, '2>', \$refresher{err}, IPC::Run::timeout(120));

my $main_script = "SET DateStyle = 'German, DMY'; SET extra_float_digits = -2;\n"
    . join('', map { "SELECT matviews.refresh('$_', row_count_strategy => 'exact');\n" } @main_views);
my ($loops, $loops_during, %conc_fallback, @conc_bad) = (0, 0);
my $conc_start = time();
while (1) {
    $_->{h}->pump_nb for grep { $_->{h}->pumpable } @writers, \%refresher;
    my $alive_before = grep { $_->{h}->pumpable } @writers;
    last if !$alive_before;
    my @lines = split /\n/, run_script('refresh during the writes', $main_script);
    my %res;
    @res{@main_views} = map { $json->decode($_) } @lines;
    $loops++;
    $_->{h}->pump_nb for grep { $_->{h}->pumpable } @writers, \%refresher;
    $loops_during++ if (grep { $_->{h}->pumpable } @writers) == 2;
    for my $v (@main_views) {
        my $r = $res{$v};
        push @conc_bad, "loop $loops $v: " . $json->encode($r) if !$r || $r->{status} ne 'updated';
        $conc_fallback{ ($r->{response}{fallback} // '') =~ s/\d+/N/gr }++ if $r && defined $r->{response}{fallback};
    }
    if (time() - $conc_start > 60) {
        diag("seed=$seed: the writers did not end within 60 s");
        $_->{h}->kill_kill for @writers;
        last;
    }
}
for my $w (0, 1) {
    my $h = $writers[$w];
    my $ok = eval { $h->{h}->finish };
    ok($ok, "writer $w committed all its DML without an error")
      or diag("seed=$seed writer $w: $h->{err}");
}
sql(q{UPDATE refresher_ctl SET stop = true});
my $rok = eval { $refresher{h}->finish };
my @rlines = split /\n/, $refresher{out};
my @rbad = grep { !/^\S+ updated$/ } @rlines;
ok($rok && !@rbad && @rlines >= @second, 'the second refresher, running alongside, refreshed its views without an error')
  or diag("seed=$seed refresher: $refresher{err}\n" . join("\n", @rbad[0 .. ($#rbad < 4 ? $#rbad : 4)]));
note(sprintf('concurrent phase: %.1f s, %d refresh loops of %d views, %d while both writers wrote, %d refreshes by the '
    . 'second refresher; fallbacks: %s', time() - $conc_start, $loops, scalar(@main_views), $loops_during, scalar(@rlines),
    join(', ', map { "$_ x$conc_fallback{$_}" } sort keys %conc_fallback) || 'none'));
cmp_ok($loops_during, '>=', 2, 'the views were refreshed at least twice while both writers were committing');
is(scalar(@conc_bad), 0, 'every refresh during the concurrent writes returned status updated')
  or diag("seed=$seed\n" . join("\n", @conc_bad[0 .. ($#conc_bad < 4 ? $#conc_bad : 4)]));
my @conc_unexpected = grep { !/more than matviews.incremental_max_fraction/ } keys %conc_fallback;
is(join('; ', @conc_unexpected), '', 'no fallback during the concurrent writes but for the share of keys');

# The writers are done: one more refresh catches what was committed during the last one.
my $final = refresh_all();
my @final_bad = map { "$_: " . $json->encode($final->{$_}) } grep { $final->{$_}{status} ne 'updated' } @names;
is(scalar(@final_bad), 0, 'the refresh after the writers stopped succeeds for every view')
  or diag("seed=$seed\n" . join("\n", @final_bad));
my $final_diff = check_all();
for my $v (@names) {
    # A view already wrong before this phase is not counted again.
    next if $fail{$v}{equal};
    is($final_diff->{$v}, '0 0', "after the concurrent writes, $v equals its query (seed=$seed)")
      or diag("seed=$seed view $v: " . $json->encode($final->{$v}{response}) . "\n" . diff_sample($v, $query{$v}));
}
is(sql(q{SELECT count(*) FROM matviews.changes}), '0', 'matviews.changes is empty after the final refresh');

############################################################################################
# The verdict per view and check.

my %check_title = (
    status      => 'every refresh returned status updated',
    incremental => 'every refresh after the first took the incremental path (or the expected TRUNCATE fallback)',
    equal       => 'equals its query after every round',
    keys        => 'response.incremental.keys stays within the bound for the rows changed',
    counts      => 'inserted - deleted = row_count_after - row_count_before, and every incremental field is set',
);
for my $v (@names) {
    for my $check (@checks) {
        my $msgs = $fail{$v}{$check} // [];
        is(scalar(@$msgs), 0, "$v: $check_title{$check}")
          or diag(scalar(@$msgs) . " failure(s), first ones:\n" . join("\n", @$msgs[0 .. ($#$msgs < 2 ? $#$msgs : 2)]));
    }
}

my $log = slurp_file($node->logfile);
ok($log !~ /TRAP:|terminated by signal|server process .* exited with exit code/, 'no backend crashed');
note(sprintf('033_incremental_property: seed=%s, %.1f s', $seed, time() - $started));
$node->stop;
done_testing();
