# ALTER EXTENSION matviews UPDATE from every released version (extension/releases.txt) to the
# current one. Each release's install script comes from the repository's history (run-tests.sh
# extracts it into releases/); the shipped copy must be the same file. A database filled as that
# release left it (views, definitions, a schedule, queued and finished runs, a definition whose
# view was dropped, a definition named like another role's view) is updated and must then work:
# definitions bound to their views' OIDs (never to a stranger's view), queued and scheduled runs
# carried out by the worker, plain DROP followed. A pg_dump taken before the update restores
# after it, with its definitions bound again.
use strict;
use warnings;
use File::Compare;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $releases_dir = "$ENV{TESTDIR}/releases";
my @versions = map { (split ' ')[0] } grep { /\S/ } split /\n/,
    slurp_file("$releases_dir/releases.txt");
ok(@versions >= 1, 'at least one released version');

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'matviews'
max_worker_processes = 16
matviews.launcher_naptime = 200ms
});
$node->start;
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my $current = $node->safe_psql('postgres',
    q{SELECT default_version FROM pg_available_extensions WHERE name = 'matviews'});

# Versions compare as numbers part by part (0.10 after 0.9).
sub at_least { my ($v, $w) = @_; my @a = split /\./, $v; my @b = split /\./, $w;
    for my $i (0 .. 1) { return ($a[$i] // 0) > ($b[$i] // 0) if ($a[$i] // 0) != ($b[$i] // 0); }
    return 1; }

foreach my $v (@versions) {
    my $db = "up_" . ($v =~ s/\W/_/gr);
    # Every script of that release ships unchanged (its install script, or the update scripts
    # that reach it).
    foreach my $script (sort glob("$releases_dir/$v/*.sql")) {
        my $name = $script =~ s{.*/}{}r;
        is(compare($script, "$sharedir/extension/$name"), 0, "$v: the shipped $name is the released one");
    }
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    my $sql = sub { return $node->safe_psql($db, $_[0]); };
    $sql->("CREATE EXTENSION matviews VERSION '$v'");
    is($sql->(q{SELECT extversion FROM pg_extension WHERE extname = 'matviews'}), $v,
        "$v installed");

    # What that release left behind, written as it wrote it.
    $sql->(q{
        DO $$ BEGIN CREATE ROLE up_alice NOLOGIN; EXCEPTION WHEN duplicate_object THEN END $$;
        DO $$ BEGIN CREATE ROLE up_mallory NOLOGIN; EXCEPTION WHEN duplicate_object THEN END $$;
        CREATE TABLE src (id int PRIMARY KEY, grp int);
        INSERT INTO src SELECT g, g % 4 FROM generate_series(1, 40) g;
        GRANT SELECT ON src TO up_alice, up_mallory;
        CREATE MATERIALIZED VIEW mv_a AS SELECT grp, count(*) AS n FROM src GROUP BY grp;
        CREATE UNIQUE INDEX mv_a_grp ON mv_a (grp);
        ALTER MATERIALIZED VIEW mv_a OWNER TO up_alice;
        CREATE MATERIALIZED VIEW mv_b AS SELECT id FROM src;
        ALTER MATERIALIZED VIEW mv_b OWNER TO up_alice;
        -- mallory's view under the name of a definition of alice's
        CREATE MATERIALIZED VIEW mv_m AS SELECT 1 AS x;
        ALTER MATERIALIZED VIEW mv_m OWNER TO up_mallory;
        INSERT INTO matviews.definitions (schema_name, view_name, sql, search_path,
                                          refresh_strategy, unique_index_columns, owner, schedule)
        VALUES ('public', 'mv_a', 'SELECT grp, count(*) AS n FROM src GROUP BY grp', 'public',
                'concurrent', '{grp}', 'up_alice', '1 second'),
               ('public', 'mv_b', 'SELECT id FROM src', 'public', 'regular', NULL, 'up_alice', NULL),
               ('public', 'mv_m', 'SELECT 42 AS x', 'public', 'regular', NULL, 'up_alice', NULL),
               ('public', 'mv_gone', 'SELECT 1', 'public', 'regular', NULL, 'up_alice', NULL);
        INSERT INTO matviews.runs (view, definition_id, operation, strategy, status, trigger,
                                   started_at, finished_at, role, owner)
        SELECT 'public.mv_a', id, 'create', 'concurrent', 'success', 'manual', now(), now(),
               'up_alice', 'up_alice' FROM matviews.definitions WHERE view_name = 'mv_a';
    });
    my $queued_b = 2;
    if ($v eq '0.1') {
        # 0.1 queued duplicates and runs of any view by name.
        $sql->(q{
            INSERT INTO matviews.runs (view, definition_id, operation, strategy, status, trigger,
                                       run_at, role, owner)
            SELECT 'public.mv_b', id, 'refresh', NULL, 'queued', 'queue', now(), 'up_alice', 'up_alice'
            FROM matviews.definitions, generate_series(1, 2) WHERE view_name = 'mv_b';
            INSERT INTO matviews.runs (view, operation, status, trigger, run_at, role, owner)
            VALUES ('public.mv_m', 'refresh', 'queued', 'queue', now(), 'up_alice', 'up_alice'),
                   ('public.mv_gone', 'refresh', 'queued', 'queue', now(), 'up_alice', 'up_alice');
        });
    } else {
        # From 0.2 on, a view has one queued request per operation (bound to its OID), and a
        # run of a view that is not the definition's own was cancelled when it was queued.
        $queued_b = 1;
        $sql->(q{
            INSERT INTO matviews.runs (view, definition_id, operation, strategy, status, trigger,
                                       run_at, role, owner)
            SELECT 'public.mv_b', id, 'refresh', NULL, 'queued', 'queue', now(), 'up_alice', 'up_alice'
            FROM matviews.definitions WHERE view_name = 'mv_b';
            INSERT INTO matviews.runs (view, operation, status, trigger, run_at, role, owner)
            VALUES ('public.mv_m', 'refresh', 'cancelled', 'queue', now(), 'up_alice', 'up_alice'),
                   ('public.mv_gone', 'refresh', 'cancelled', 'queue', now(), 'up_alice', 'up_alice');
        });
    }
    if (at_least($v, '0.3')) {
        # A watched view, as watch() left it: its definition's watch and the trigger on src.
        $sql->(q{
            CREATE MATERIALIZED VIEW mv_w AS SELECT count(*) AS n FROM src;
            ALTER MATERIALIZED VIEW mv_w OWNER TO up_alice;
            GRANT TRIGGER ON src TO up_alice;
            INSERT INTO matviews.definitions (schema_name, view_name, sql, search_path, refresh_strategy,
                                              owner, watch_min_interval, watch_relids)
            VALUES ('public', 'mv_w', 'SELECT count(*) AS n FROM src', 'public', 'regular',
                    'up_alice', '0', '{public.src}');
            CREATE TRIGGER matviews_watch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON src
                FOR EACH STATEMENT EXECUTE FUNCTION matviews._on_change();
        });
    }
    my $w = at_least($v, '0.3') ? ' mv_w:mv_w' : '';
    my $dump = "$PostgreSQL::Test::Utils::tmp_check/$db.dump";
    command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr($db)],
        "$v: pg_dump before the update");

    $sql->('ALTER EXTENSION matviews UPDATE');
    is($sql->(q{SELECT extversion FROM pg_extension WHERE extname = 'matviews'}), $current,
        "$v -> $current: updated");
    is($sql->(q{SELECT string_agg(view_name || ':' || COALESCE(relid::text, '-'), ' ' ORDER BY view_name)
                FROM matviews.definitions}),
        "mv_a:mv_a mv_b:mv_b mv_gone:- mv_m:-$w",
        "$v: definitions bound to their own views only (mallory's mv_m and a dropped view detached)");
    is($sql->(q{SELECT string_agg(view || ':' || status, ' ' ORDER BY view) FROM matviews.runs
                WHERE status IN ('queued', 'cancelled') AND view <> 'public.mv_b'}),
        'public.mv_gone:cancelled public.mv_m:cancelled',
        "$v: queued runs of views that are gone or another's are cancelled, not rebound");
    my $b_runs = $queued_b == 2 ? 'success cancelled' : 'success';
    ok($node->poll_query_until($db, qq{SELECT string_agg(status, ' ' ORDER BY id) = '$b_runs'
                                      FROM matviews.runs
                                      WHERE view = 'public.mv_b' AND operation = 'refresh'}),
        "$v: the queued run of a bound view runs after the update ($b_runs)");
    if (at_least($v, '0.3')) {
        $sql->(q{INSERT INTO src VALUES (44, 1)});
        ok($node->poll_query_until($db, q{SELECT n = 41 FROM mv_w}),
            "$v: the watch refreshes its view after a write, after the update");
    }
    is($sql->(q{BEGIN;
                SELECT (matviews.enqueue('mv_a', run_at => now() + interval '1 hour')->>'run_id')::bigint AS first \gset
                SELECT (matviews.enqueue('mv_a', run_at => now() + interval '2 hours')->>'run_id')::bigint = :first
                    AND matviews.cancel(:first)->>'status' = 'cancelled';
                COMMIT;}), 't', "$v: enqueue coalesces and cancel works after the update");
    ok($node->poll_query_until($db, q{SELECT count(*) >= 1 FROM matviews.runs
                                      WHERE view = 'public.mv_a' AND trigger = 'schedule'
                                        AND status = 'success'}),
        "$v: the schedule runs after the update");
    $sql->(q{INSERT INTO src VALUES (41, 9)});
    is($sql->(q{SELECT matviews.refresh('mv_a')->>'status'}), 'updated', "$v: refresh works");
    is($sql->(q{SELECT n FROM mv_a WHERE grp = 9}), '1', "$v: the view was refreshed");
    is($sql->(q{SELECT string_agg(view || ':' || exists, ' ' ORDER BY view) FROM matviews.status}),
        'public.mv_a:true public.mv_b:true public.mv_gone:false public.mv_m:false'
            . ($w ? ' public.mv_w:true' : ''),
        "$v: status after the update");
    is($sql->(q{SELECT matviews.create('mv_new', 'SELECT 1 AS x')->>'status'}), 'created',
        "$v: create works");
    is($sql->(q{SELECT matviews.create('mv_inc', 'SELECT grp, count(*) AS n FROM src GROUP BY grp',
                                       refresh_strategy => 'incremental',
                                       unique_index_columns => '{grp}')->>'status'}),
        'created', "$v: an incremental view can be created after the update");
    is($sql->(q{SELECT matviews.refresh('mv_inc')->'response'->>'fallback'}), 'first refresh',
        "$v: its first refresh is a full one");
    $sql->(q{INSERT INTO src VALUES (43, 2)});
    is($sql->(q{SET matviews.incremental_max_fraction = 1;
                SELECT matviews.refresh('mv_inc')->'response'->'incremental'->>'changes'}),
        '1', "$v: then it refreshes incrementally");
    is($sql->(q{SELECT n FROM mv_inc WHERE grp = 2}), '11', "$v: with the change");
    $sql->(q{DROP MATERIALIZED VIEW mv_b});
    is($sql->(q{SELECT count(*) FROM matviews.definitions WHERE view_name = 'mv_b'}), '0',
        "$v: a plain DROP removes the definition");

    # The dump taken before the update, restored into the current version.
    my $restored = "${db}_restored";
    $node->safe_psql('postgres', "CREATE DATABASE $restored");
    command_ok(['pg_restore', '-d', $node->connstr($restored), $dump],
        "$v: the pre-update dump restores");
    my $rsql = sub { return $node->safe_psql($restored, $_[0]); };
    is($rsql->(q{SELECT extversion FROM pg_extension WHERE extname = 'matviews'}), $current,
        "$v: restored as $current");
    is($rsql->(q{SELECT string_agg(view_name || ':' || COALESCE(relid::text, '-'), ' ' ORDER BY view_name)
                 FROM matviews.definitions}),
        "mv_a:mv_a mv_b:mv_b mv_gone:- mv_m:-$w",
        "$v: restored definitions bound to their own views only");
    ok($node->poll_query_until($restored, q{SELECT count(*) >= 1 FROM matviews.runs
                                            WHERE view = 'public.mv_b' AND status = 'success'
                                              AND operation = 'refresh'}),
        "$v: the restored queued run runs");
    is($rsql->(q{SELECT count(*) FROM matviews.runs WHERE view = 'public.mv_b' AND status = 'cancelled'}),
        $queued_b - 1, "$v: its restored duplicate, if any, is cancelled");
    is($rsql->(q{SELECT matviews.refresh('mv_a')->>'status'}), 'updated',
        "$v: refresh works after the restore");
}

# A dump of the current version restores with every definition bound by name through regclass.
my $cur = 'up_current';
$node->safe_psql('postgres', "CREATE DATABASE $cur");
$node->safe_psql($cur, q{
    CREATE EXTENSION matviews;
    CREATE SCHEMA rep;
    CREATE TABLE rep.t (i int);
    INSERT INTO rep.t VALUES (1), (2);
    SELECT matviews.create('rep.mv', 'SELECT i FROM rep.t', schedule => '1 hour');
    ALTER MATERIALIZED VIEW rep.mv RENAME TO mv_renamed;
});
my $cur_dump = "$PostgreSQL::Test::Utils::tmp_check/$cur.dump";
command_ok(['pg_dump', '-Fc', '-f', $cur_dump, '-d', $node->connstr($cur)], 'current: pg_dump');
$node->safe_psql('postgres', "CREATE DATABASE ${cur}_restored");
command_ok(['pg_restore', '-d', $node->connstr("${cur}_restored"), $cur_dump],
    'current: restore');
is($node->safe_psql("${cur}_restored",
        q{SELECT view || ':' || exists || ':' || schedule FROM matviews.status}),
    'rep.mv_renamed:true:1 hour', 'current: the restored definition follows its view');
is($node->safe_psql("${cur}_restored",
        q{SELECT relid::oid = 'rep.mv_renamed'::regclass::oid FROM matviews.definitions}),
    't', 'current: bound to the restored relation, not to the old OID');

done_testing();
