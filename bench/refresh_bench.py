"""matviews refresh benchmark: targets P1, P2 and P3, side by side in one run.

Runs inside the throw-away cluster that bench/refresh_bench.sh starts with pg_virtualenv (PGHOST,
PGPORT, PGUSER, PGPASSWORD and PGDATABASE come from it). Do not run it against a real database:
it creates and drops tables and materialized views in the current database.

  P1  matviews.refresh(strategy => 'regular') vs raw REFRESH MATERIALIZED VIEW, client-side:
      median over many calls on a tiny view (added ms), median of a few runs on the big view, and
      on the view at every size of BENCH_SIZES (added ms and %).
  P2  the longest stall of a point-read loop, run in its own process and connection, while
      another connection refreshes the big view (the largest size): regular, concurrent and swap,
      and extra swap scenarios (long-running reader, autovacuum, a dependent materialized view).
  P3  swap total time vs regular refresh of the same view and indexes (median of N runs), at
      every size.

Settings come from the environment (refresh_bench.sh maps its flags onto them):
  BENCH_ROWS (1000000), BENCH_SIZES (empty: the one size BENCH_ROWS; else comma-separated row
  counts, P2 at the largest), BENCH_RUNS (3), BENCH_TINY_ITERS (200), BENCH_P2_RUNS (1),
  BENCH_PLOT (0/1), BENCH_TIMEOUT (seconds for the whole run, 3600), BENCH_SERVER_OPTS (text,
  shown in the report), BENCH_LONG_READER_S (0.3; 0 skips the extra swap scenarios with a
  long-running reader), BENCH_SHORT_LOCK_TIMEOUT (40ms: the second of those scenarios),
  BENCH_AUTOVACUUM_SCENARIO (1; 0 skips the extra swap scenario during an autovacuum of the view),
  BENCH_DEP (1; 0 skips the extra swap scenario with a dependent materialized view).

Every size gets its own base table and view, built from generate_series (the previous size's are
dropped first), so that a refresh at one size reads exactly that many rows.

Autovacuum is off for the big view (a storage parameter, which swap carries over), so that no
autovacuum of the view lands at random in a measurement; one extra scenario turns it on and swaps
while autovacuum is vacuuming the view, as happens within a minute of any refresh of a big view.
"""

import datetime
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import statistics
import sys
import time
from array import array

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
# The sweep, ascending; without BENCH_SIZES the one size BENCH_ROWS, as before the sweep existed.
SIZES = sorted({int(x) for x in os.environ.get("BENCH_SIZES", "").split(",") if x.strip()}) or [ROWS]
SWEEP = len(SIZES) > 1 or bool(os.environ.get("BENCH_SIZES", "").strip())
P2_ROWS = SIZES[-1]  # P2 (and the report's "big view") runs at the largest size only
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TINY_ITERS = int(os.environ.get("BENCH_TINY_ITERS", "200"))
P2_RUNS = int(os.environ.get("BENCH_P2_RUNS", "1"))
PLOT = os.environ.get("BENCH_PLOT", "0") == "1"
TIMEOUT_S = int(os.environ.get("BENCH_TIMEOUT", "3600"))
SERVER_OPTS = os.environ.get("BENCH_SERVER_OPTS", "")
LONG_READER_S = float(os.environ.get("BENCH_LONG_READER_S", "0.3"))
SHORT_LOCK_TIMEOUT = os.environ.get("BENCH_SHORT_LOCK_TIMEOUT", "40ms")
LONG_DEFAULT = "swap + long reader, default swap_lock_timeout"
LONG_SHORT = f"swap + long reader, swap_lock_timeout {SHORT_LOCK_TIMEOUT}"
AUTOVACUUM = "swap during an autovacuum of the view"
AUTOVACUUM_SCENARIO = os.environ.get("BENCH_AUTOVACUUM_SCENARIO", "1") == "1"
AUTOVACUUM_COST_LIMIT = 50  # a quarter of the default 200
DEPENDENT = "swap with a dependent materialized view"
DEP_SCENARIO = os.environ.get("BENCH_DEP", "1") == "1"

VIEW = "bench_mv"
TINY = "bench_tiny"
DEP = "bench_dep"  # the dependent materialized view of the DEPENDENT scenario, only while it runs
VIEW_COLUMNS = "id, grp, val, bucket, note"
DEP_COLUMNS = "id, w"
PAD_BEFORE_S = 1.0  # reads before the refresh starts: the quiet baseline
PAD_AFTER_S = 0.5  # reads after it returns, so the last blocked read is seen completing
STATEMENT_TIMEOUT = "20min"  # no single statement of the benchmark may hang the run

# The spec's targets (SPEC §9). P1 %: on a 1M-row view (P1_PCT_ROWS); at other sizes the added
# ms are reported without a verdict, since a fixed cost per call is a larger share of a smaller
# refresh. P3: at every size from P3_SIZES[0] to P3_SIZES[1] rows.
TARGETS = {
    "p1_tiny_ms": 0.25,
    "p1_big_pct": 1.0,
    "p2_concurrent_ms": 20.0,
    "p2_swap_ms": 50.0,
    "p3_ratio": 1.10,
}
P1_PCT_ROWS = 1_000_000
P3_SIZES = (10_000, 1_000_000)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def connect():
    # Autocommit: every statement is its own transaction, as a client calling matviews would.
    conn = psycopg2.connect("", application_name="matviews-bench")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    return conn


def q1(cur, sql, args=None):
    cur.execute(sql, args)
    row = cur.fetchone()
    return row[0] if row else None


def timed(cur, sql, args=None):
    # Wall time of one statement as the client sees it (round trip and commit included), in ms,
    # and its first column of the first row.
    t0 = time.perf_counter()
    cur.execute(sql, args)
    row = cur.fetchone() if cur.description else None
    return (time.perf_counter() - t0) * 1000.0, (row[0] if row else None)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    # Nearest-rank percentile.
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def bootstrap_ci(a, b, stat, n=2000):
    # 95 % interval of stat(median(a), median(b)), resampling each sample independently with a
    # fixed seed: how far run-to-run noise alone could move the measured value.
    rng = random.Random(20240601)
    vals = sorted(
        stat(median([rng.choice(a) for _ in a]), median([rng.choice(b) for _ in b])) for _ in range(n)
    )
    return vals[int(0.025 * n)], vals[int(0.975 * n) - 1]


def check_response(resp, what):
    # A matviews response must not be an error or a skip: the benchmark would measure nothing.
    if isinstance(resp, str):
        resp = json.loads(resp)
    if resp.get("status") in ("error", "skipped"):
        raise RuntimeError(f"{what}: {json.dumps(resp)[:2000]}")
    return resp


# ----------------------------------------------------------------------------------------------
# Dataset


def setup_tiny(cur):
    log(f"setup: {TINY} with 10 rows")
    cur.execute("CREATE EXTENSION IF NOT EXISTS matviews")
    cur.execute(f"SELECT matviews.delete('{TINY}')")
    cur.execute("DROP TABLE IF EXISTS bench_tiny_base CASCADE")
    cur.execute(
        "CREATE TABLE bench_tiny_base AS SELECT g AS id, 'item ' || g AS label "
        "FROM generate_series(1, 10) g"
    )
    check_response(
        q1(cur, "SELECT matviews.create(%s, %s)", (TINY, "SELECT id, label FROM public.bench_tiny_base")),
        "create tiny",
    )


def setup(cur, rows):
    # The base table and the view at one size, replacing the previous size's: one INSERT from
    # generate_series (a few seconds for 1M rows), then matviews.create with the unique index and
    # the second index, as every measurement expects.
    t0 = time.monotonic()
    log(f"setup: base table and {VIEW} with {rows:,} rows, two indexes")
    cur.execute("CREATE EXTENSION IF NOT EXISTS matviews")
    cur.execute(f"DROP MATERIALIZED VIEW IF EXISTS {DEP}")
    cur.execute(f"SELECT matviews.delete('{VIEW}')")
    cur.execute("DROP TABLE IF EXISTS bench_base CASCADE")
    cur.execute(
        "CREATE TABLE bench_base (id bigint PRIMARY KEY, grp int NOT NULL, "
        "val double precision NOT NULL, note text NOT NULL)"
    )
    cur.execute(
        "INSERT INTO bench_base SELECT g, g %% 1000, (g::bigint * 7919 %% 100003) / 7.0, md5(g::text) "
        "FROM generate_series(1, %s) g",
        (rows,),
    )
    cur.execute("VACUUM ANALYZE bench_base")
    ms, resp = timed(
        cur,
        "SELECT matviews.create(%s, %s, unique_index_columns => ARRAY['id'])",
        (VIEW, "SELECT id, grp, val, round(val)::int AS bucket, note FROM public.bench_base"),
    )
    check_response(resp, "create")
    cur.execute(f"CREATE INDEX {VIEW}_grp_idx ON {VIEW} (grp, bucket)")
    cur.execute(f"ALTER MATERIALIZED VIEW {VIEW} SET (autovacuum_enabled = off)")
    cur.execute(f"VACUUM ANALYZE {VIEW}")
    d = describe_view(cur)
    log(
        f"setup: {VIEW} created in {ms:.0f} ms; {rows:,} rows, {d['bytes'] / 2**20:.0f} MB, "
        f"indexes {d['indexes']}; setup {time.monotonic() - t0:.1f} s"
    )
    return d


def describe_view(cur):
    cur.execute(
        "SELECT c.oid, c.reltuples::bigint, pg_total_relation_size(c.oid), "
        "(SELECT array_agg(i.indexrelid::regclass::text || CASE WHEN i.indisunique THEN ' (unique)' ELSE '' END "
        "  ORDER BY i.indexrelid::regclass::text) FROM pg_index i WHERE i.indrelid = c.oid) "
        "FROM pg_class c WHERE c.oid = %s::regclass",
        (VIEW,),
    )
    oid, tuples, size, indexes = cur.fetchone()
    return {"oid": oid, "rows": tuples, "bytes": size, "indexes": indexes or []}


def check_view(cur, rows, expect_indexes):
    # After every operation: the view still has all its rows and both indexes.
    d = describe_view(cur)
    n = q1(cur, f"SELECT count(*) FROM {VIEW}")
    reloptions = q1(cur, "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (VIEW,)) or []
    if n != rows or len(d["indexes"]) != expect_indexes or "autovacuum_enabled=off" not in reloptions:
        raise RuntimeError(
            f"{VIEW} is not as expected after the refresh: {n} rows, indexes {d['indexes']}, "
            f"reloptions {reloptions}"
        )
    return d


_change_round = [0]

# Every swap of the big view: (label, wall-clock start, end, lock attempts, status), to match
# swaps that needed several lock attempts with autovacuum runs in the server log.
SWAPS = []


def change_base(cur):
    # Update 1 % of the base rows so a refresh has work to do (concurrent: 1 % of rows differ).
    k = _change_round[0] % 100
    _change_round[0] += 1
    cur.execute("UPDATE bench_base SET val = val + 1 WHERE id %% 100 = %s", (k,))
    cur.execute("VACUUM bench_base")


def quiesce(cur):
    # Untimed: write out dirty buffers, so no timed operation pays for the previous one's.
    cur.execute("CHECKPOINT")
    time.sleep(0.2)


# ----------------------------------------------------------------------------------------------
# P1 on the tiny view


def p1_tiny(cur):
    raw_sql = f"REFRESH MATERIALIZED VIEW {TINY}"
    mv_sql = f"SELECT matviews.refresh('{TINY}', strategy => 'regular', row_count_strategy => 'none')"
    log(f"P1 tiny: {TINY_ITERS} calls each, alternating, after 20 warm-up calls each")
    for _ in range(20):
        timed(cur, raw_sql)
        timed(cur, mv_sql)
    raw, mv = [], []
    for i in range(TINY_ITERS):
        order = [(raw_sql, raw), (mv_sql, mv)]
        if i % 2:
            order.reverse()
        for sql, out in order:
            ms, resp = timed(cur, sql)
            if out is mv:
                check_response(resp, "tiny refresh")
            out.append(ms)
    r = {
        "raw_median_ms": median(raw),
        "mv_median_ms": median(mv),
        "raw_p90_ms": pct(raw, 90),
        "mv_p90_ms": pct(mv, 90),
        "iters": TINY_ITERS,
    }
    r["added_ms"] = r["mv_median_ms"] - r["raw_median_ms"]
    log(
        f"P1 tiny: raw {r['raw_median_ms']:.3f} ms, matviews {r['mv_median_ms']:.3f} ms, "
        f"added {r['added_ms']:.3f} ms"
    )
    return r


# ----------------------------------------------------------------------------------------------
# P2: the point-read loop, in its own process (no GIL shared with the refreshing client)


def reader_main(conn_pipe, rows, seed, deadline_mono, relation=VIEW, columns=VIEW_COLUMNS):
    # Point reads on `relation` as fast as possible until told to stop (or the deadline passes);
    # sends back the start and end (CLOCK_MONOTONIC, ns) of every read, and the errors it saw.
    starts, ends = array("q"), array("q")
    errors = []
    prepare = f"PREPARE point(bigint) AS SELECT {columns} FROM {relation} WHERE id = $1"
    conn = connect()
    cur = conn.cursor()
    cur.execute(prepare)
    rng = random.Random(seed)
    conn_pipe.send("ready")
    while not conn_pipe.poll() and time.monotonic() < deadline_mono:
        key = rng.randint(1, rows)
        t0 = time.monotonic_ns()
        try:
            cur.execute("EXECUTE point(%s)", (key,))
            cur.fetchall()
        except psycopg2.Error as e:
            errors.append(f"{e.pgcode}: {str(e).strip()}")
            if conn.closed:
                conn = connect()
                cur = conn.cursor()
                cur.execute(prepare)
            continue
        starts.append(t0)
        ends.append(time.monotonic_ns())
    conn.close()
    conn_pipe.send((starts.tobytes(), ends.tobytes(), errors[:20], len(errors)))


def long_reader_main(conn_pipe, seconds, deadline_mono):
    # Back-to-back queries on the view that each hold its AccessShareLock for `seconds`: the
    # long-running reader , which a swap must not let every other reader queue
    # behind.
    conn = connect()
    cur = conn.cursor()
    conn_pipe.send("ready")
    n = 0
    while not conn_pipe.poll() and time.monotonic() < deadline_mono:
        try:
            cur.execute(f"SELECT pg_sleep(%s), id FROM {VIEW} WHERE id = 1", (seconds,))
            cur.fetchall()
            n += 1
        except psycopg2.Error:
            if conn.closed:
                conn = connect()
                cur = conn.cursor()
    conn.close()
    conn_pipe.send(n)


def window_stats(starts, ends, t0, t1, clip_end=False):
    # Reads seen in [t0, t1] (ns): the longest gap between consecutive read completions that
    # overlaps the window (the longest time no read returned: a blocked read shows as one long
    # gap), counted from t0 at the earliest and, with clip_end (the baseline before a refresh),
    # up to t1 at the latest; and the latency of the reads that overlap the window.
    lat = []
    longest = 0
    longest_at = None
    prev_end = None
    for s, e in zip(starts, ends):
        if e >= t0 and s <= t1:
            lat.append((e - s) / 1e6)
        if prev_end is not None and e > t0 and prev_end < t1:
            gap = (min(e, t1) if clip_end else e) - max(prev_end, t0)
            if gap > longest:
                longest, longest_at = gap, (prev_end, e)
        prev_end = e
    return {
        "reads": len(lat),
        "longest_stall_ms": longest / 1e6,
        "stall_at": longest_at,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
    }


def start_process(ctx, target, *args):
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, *args))
    proc.start()
    if not parent.poll(60) or parent.recv() != "ready":
        proc.kill()
        raise RuntimeError(f"{target.__name__} did not start")
    return proc, parent


def stop_process(proc, parent):
    parent.send("stop")
    if not parent.poll(120):
        proc.kill()
        raise RuntimeError("a reader did not stop")
    out = parent.recv()
    proc.join(30)
    return out


def start_autovacuum_on_view(cur):
    # Lets autovacuum at the view (it has a refresh's inserts to vacuum) and waits until a worker
    # is vacuuming it; False if none started within 30 s. The vacuum is throttled to a quarter of
    # the default cost limit, as autovacuum often is on a busy server, so that it is still running
    # when the swap, which starts now, asks for its lock.
    cur.execute("ALTER SYSTEM SET autovacuum_naptime = '1s'")
    cur.execute("SELECT pg_reload_conf()")
    cur.execute(
        f"ALTER MATERIALIZED VIEW {VIEW} RESET (autovacuum_enabled), "
        f"SET (autovacuum_vacuum_cost_limit = {AUTOVACUUM_COST_LIMIT})"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if q1(cur, "SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = %s::regclass", (VIEW,)):
            return True
        time.sleep(0.01)
    return False


def stop_autovacuum_on_view(cur):
    cur.execute(
        f"ALTER MATERIALIZED VIEW {VIEW} RESET (autovacuum_vacuum_cost_limit), SET (autovacuum_enabled = off)"
    )
    cur.execute("ALTER SYSTEM RESET autovacuum_naptime")
    cur.execute("SELECT pg_reload_conf()")


def create_dependent(cur, rows):
    # A plain materialized view on the view, of its size, populated, with a unique index (and
    # autovacuum off, as for the view): what a swap must drop and re-create with the view.
    cur.execute(f"DROP MATERIALIZED VIEW IF EXISTS {DEP}")
    ms, _ = timed(
        cur,
        f"CREATE MATERIALIZED VIEW {DEP} WITH (autovacuum_enabled = off) AS SELECT id, val + 1 AS w FROM {VIEW}",
    )
    cur.execute(f"CREATE UNIQUE INDEX {DEP}_id_idx ON {DEP} (id)")
    cur.execute(f"VACUUM ANALYZE {DEP}")
    log(f"P2 dependent: {DEP} ({rows:,} rows, unique index) created in {ms:.0f} ms")


def check_dependent(cur, rows):
    # After the swap: the dependent is back, populated with all rows and its unique index.
    n = q1(cur, f"SELECT count(*) FROM {DEP}")
    uniq = q1(cur, f"SELECT count(*) FROM pg_index WHERE indrelid = '{DEP}'::regclass AND indisunique")
    if n != rows or uniq != 1:
        raise RuntimeError(f"{DEP} is not as expected after the swap: {n} rows, {uniq} unique indexes")


def p2_run(
    ctl, strategy, explicit_transaction=False, long_reader_s=None, lock_timeout=None, autovacuum=False, dependent=False
):
    # One refresh of the big view with the read loop running beside it (and, for the extra swap
    # scenarios, a long-running reader too, and the swap's lock_timeout set for the call; or a
    # dependent materialized view, with a second read loop on it).
    rows = P2_ROWS
    cur = ctl.cursor()
    change_base(cur)
    if autovacuum:
        # Gives autovacuum something to do on the view: a refresh counts all its rows as inserts
        # (an earlier autovacuum scenario may have vacuumed the current relation already).
        cur.execute(f"REFRESH MATERIALIZED VIEW {VIEW}")
    if dependent:
        create_dependent(cur, rows)
    quiesce(cur)
    ctx = mp.get_context("spawn")
    deadline = time.monotonic() + 30 * 60
    proc, parent = start_process(ctx, reader_main, rows, random.randrange(1 << 30), deadline)
    dep_proc = None
    if dependent:
        # Its own process and connection, as for the view: a read blocked on one relation must
        # not hide (or cause) a stall on the other.
        dep_proc, dep_parent = start_process(
            ctx, reader_main, rows, random.randrange(1 << 30), deadline, DEP, DEP_COLUMNS
        )
    long_proc = None
    if long_reader_s:
        long_proc, long_parent = start_process(ctx, long_reader_main, long_reader_s, deadline)
    if lock_timeout:
        cur.execute("SELECT set_config('matviews.swap_lock_timeout', %s, false)", (lock_timeout,))
    time.sleep(PAD_BEFORE_S)
    vacuum_started = None
    if autovacuum:
        vacuum_started = start_autovacuum_on_view(cur)
    sql = f"SELECT matviews.refresh('{VIEW}', strategy => '{strategy}', row_count_strategy => 'none')"
    commit_ns = None
    wall0 = time.time()
    t0 = time.monotonic_ns()
    if explicit_transaction:
        cur.execute("BEGIN")
        cur.execute(sql)
        resp = cur.fetchone()[0]
        commit_ns = time.monotonic_ns()
        cur.execute("COMMIT")
    else:
        cur.execute(sql)
        resp = cur.fetchone()[0]
    t1 = time.monotonic_ns()
    wall1 = time.time()
    time.sleep(PAD_AFTER_S)
    sb, eb, errors, nerrors = stop_process(proc, parent)
    dep_out = stop_process(dep_proc, dep_parent) if dep_proc else None
    if long_proc:
        stop_process(long_proc, long_parent)
    if lock_timeout:
        cur.execute("RESET matviews.swap_lock_timeout")
    if autovacuum:
        stop_autovacuum_on_view(cur)
    if long_reader_s or autovacuum or dependent:
        # Extra scenarios: a swap that gave up on the lock (or refused its dependent) is a
        # result, not a benchmark failure.
        status = resp.get("status")
        if status == "error":
            status = f"error {resp['error']['sqlstate']}: {resp['error']['message']}"
    else:
        resp = check_response(resp, f"refresh {strategy}")
        status = resp.get("status")
    if strategy == "swap":
        attempts = (resp.get("response") or {}).get("lock_attempts")
        label = "P2"
        if long_reader_s:
            label = f"P2 (long reader, swap_lock_timeout {lock_timeout or 'default'})"
        elif autovacuum:
            label = "P2 (during autovacuum)"
        elif dependent:
            label = "P2 (dependent)"
        SWAPS.append((label, wall0, wall1, attempts, status))
    starts, ends = array("q"), array("q")
    starts.frombytes(sb)
    ends.frombytes(eb)
    w = window_stats(starts, ends, t0, t1)
    base = window_stats(starts, ends, t0 - int(PAD_BEFORE_S * 0.9e9), t0 - 1, clip_end=True)
    w.update(
        strategy=strategy,
        status=status,
        long_reader_s=long_reader_s,
        lock_timeout=lock_timeout,
        autovacuum=autovacuum,
        vacuum_started=vacuum_started,
        total_ms=(t1 - t0) / 1e6,
        server_ms=resp.get("response", {}).get("duration_ms"),
        baseline_stall_ms=base["longest_stall_ms"],
        baseline_p99_ms=base["p99_ms"],
        errors=nerrors,
        error_samples=errors,
        lock_attempts=resp.get("response", {}).get("lock_attempts"),
        lock_wait_ms=resp.get("response", {}).get("lock_wait_ms"),
        trace=(starts, ends, t0, t1),
        dependent=dependent,
    )
    if dep_out:
        ds, de = array("q"), array("q")
        ds.frombytes(dep_out[0])
        de.frombytes(dep_out[1])
        d = window_stats(ds, de, t0, t1)
        d["baseline_stall_ms"] = window_stats(ds, de, t0 - int(PAD_BEFORE_S * 0.9e9), t0 - 1, clip_end=True)[
            "longest_stall_ms"
        ]
        d.update(errors=dep_out[3], error_samples=dep_out[2], trace=(ds, de, t0, t1))
        w["dep"] = d
        w["dependents_recreated"] = (resp.get("response") or {}).get("dependents_recreated")
    if explicit_transaction:
        # The swap holds its exclusive lock from taking it until COMMIT returns, so the read in
        # flight when the function returned is the blocked one: it started about when the lock
        # was taken (or just before). Split its wait at the function's return and at COMMIT.
        blocked = next(((a, b) for a, b in zip(starts, ends) if b > commit_ns), None)
        if blocked:
            a, b = blocked
            w["blocked_read_ms"] = (b - a) / 1e6
            w["in_function_ms"] = (commit_ns - a) / 1e6
            w["commit_ms"] = (t1 - commit_ns) / 1e6
            w["after_commit_ms"] = (b - t1) / 1e6
    check_view(cur, rows, 2)
    extra = f" (long reader {long_reader_s} s, swap_lock_timeout {lock_timeout or 'default'})" if long_reader_s else ""
    if autovacuum:
        extra = f" (during autovacuum of the view: {'started' if vacuum_started else 'DID NOT START'})"
    if dependent:
        check_dependent(cur, rows)
        cur.execute(f"DROP MATERIALIZED VIEW {DEP}")  # no other measurement has a dependent
        extra = (
            f" (dependent {DEP}: longest stall {w['dep']['longest_stall_ms']:.1f} ms, {w['dep']['reads']} reads, "
            f"errors {w['dep']['errors']}, re-created {w.get('dependents_recreated')})"
        )
    log(
        f"P2 {strategy}{' (BEGIN/COMMIT)' if explicit_transaction else ''}{extra}: {status}, refresh {w['total_ms']:.0f} ms, "
        f"longest stall {w['longest_stall_ms']:.1f} ms, {w['reads']} reads, p50 {w['p50_ms']:.2f} ms, "
        f"p99 {w['p99_ms']:.2f} ms, baseline stall {w['baseline_stall_ms']:.1f} ms, errors {nerrors}, "
        f"lock attempts {w['lock_attempts']}"
    )
    return w


# ----------------------------------------------------------------------------------------------
# P1 on the big view (and at every size of the sweep), and P3


def p1_p3(ctl, rows, view):
    # raw REFRESH, matviews regular and swap of the current view, interleaved in the same rounds
    # (order rotating), so that a slow moment of the machine falls on all three alike.
    cur = ctl.cursor()
    ops = {
        "raw": f"REFRESH MATERIALIZED VIEW {VIEW}",
        "regular": f"SELECT matviews.refresh('{VIEW}', strategy => 'regular', row_count_strategy => 'none')",
        "swap": f"SELECT matviews.refresh('{VIEW}', strategy => 'swap', row_count_strategy => 'none')",
    }
    times = {k: [] for k in ops}
    names = list(ops)
    log(f"P1/P3 at {rows:,} rows: {RUNS} rounds of raw REFRESH, matviews regular, matviews swap (order rotates)")
    for r in range(RUNS):
        order = names[r % 3 :] + names[: r % 3]
        for name in order:
            quiesce(cur)
            wall0 = time.time()
            ms, resp = timed(cur, ops[name])
            if name != "raw":
                resp = check_response(resp, f"refresh {name}")
            if name == "swap":
                SWAPS.append(("P3", wall0, time.time(), resp["response"].get("lock_attempts"), resp["status"]))
            check_view(cur, rows, 2)
            times[name].append(ms)
            log(f"P1/P3 {rows:,} rows, round {r + 1}: {name} {ms:.0f} ms")
    med = {k: median(v) for k, v in times.items()}
    paired = [(g - r) / r * 100.0 for g, r in zip(times["regular"], times["raw"])]
    out = {
        "rows": rows,
        "bytes": view["bytes"],
        "times": times,
        "median": med,
        "p1_paired_pct": median(paired),
        "raw_iqr_pct": (pct(times["raw"], 75) - pct(times["raw"], 25)) / med["raw"] * 100.0,
        "p1_pct": (med["regular"] - med["raw"]) / med["raw"] * 100.0,
        "p1_ci": bootstrap_ci(times["regular"], times["raw"], lambda g, r: (g - r) / r * 100.0),
        "p3_ratio": med["swap"] / med["regular"],
        "p3_ci": bootstrap_ci(times["swap"], times["regular"], lambda w, g: w / g),
        "p3_ratio_raw": med["swap"] / med["raw"],
        "p1_added_ms": med["regular"] - med["raw"],
        "p1_added_ci": bootstrap_ci(times["regular"], times["raw"], lambda g, r: g - r),
    }
    log(
        f"P1/P3 {rows:,} rows: raw {med['raw']:.1f} ms, regular {med['regular']:.1f} ms "
        f"(P1 {out['p1_added_ms']:+.2f} ms, {out['p1_pct']:+.1f} %), swap {med['swap']:.1f} ms "
        f"(P3 {out['p3_ratio']:.2f}x)"
    )
    return out


# ----------------------------------------------------------------------------------------------
# Autovacuum on the view, from the server log (log_autovacuum_min_duration = 0)


def autovacuum_runs(cur):
    # [(kind, start, end)] in wall-clock seconds for every autovacuum VACUUM or ANALYZE of the
    # view, read from the pg_virtualenv cluster's log; [] when the log is not where expected.
    import re

    datadir = q1(cur, "SHOW data_directory")
    path = os.path.join(datadir.split("/data/")[0], "log", "postgresql-15-regress.log")
    if "/data/" not in datadir or not os.path.exists(path):
        return None
    runs, pending = [], None
    head = re.compile(
        r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC .*LOG:  automatic (?:aggressive )?(vacuum|analyze) "
        rf'of table "[^"]*\.public\.{VIEW}"'
    )
    with open(path, errors="replace") as f:
        for line in f:
            m = head.match(line)
            if m:
                end = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
                    tzinfo=datetime.timezone.utc
                )
                pending = (m.group(2), end.timestamp())
                continue
            e = re.search(r"elapsed: ([0-9.]+) s", line)
            if pending and e:
                runs.append((pending[0], pending[1] - float(e.group(1)), pending[1]))
                pending = None
            elif pending and re.match(r"^\d{4}-", line):
                pending = None
    return runs


# ----------------------------------------------------------------------------------------------
# Report


def stall_of(w):
    # The longest stall of a P2 run: of the view's reads, and of the dependent's when it had one.
    return max(w["longest_stall_ms"], w["dep"]["longest_stall_ms"] if w.get("dep") else 0.0)


def verdict(ok):
    return "PASS" if ok else "MISS"


def inconclusive(lo, hi, target):
    return " (inconclusive)" if lo <= target <= hi else ""


def fmt_ms(x):
    if x is None or x != x:
        return "-"
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 10 else f"{x:.2f} ms"


def p1_pct_verdict(x):
    # The P1 % target is stated for a 1M-row view: smaller views get no verdict.
    if x["rows"] < P1_PCT_ROWS:
        return "(no target)"
    lo, hi = x["p1_ci"]
    return verdict(x["p1_pct"] <= TARGETS["p1_big_pct"]) + inconclusive(lo, hi, TARGETS["p1_big_pct"])


def p3_verdict(x):
    if not P3_SIZES[0] <= x["rows"] <= P3_SIZES[1]:
        return "(no target)"
    lo, hi = x["p3_ci"]
    return verdict(x["p3_ratio"] <= TARGETS["p3_ratio"]) + inconclusive(lo, hi, TARGETS["p3_ratio"])


def report(env, view, tiny, p2, sweep):
    big = sweep[-1]
    lines = []
    add = lines.append
    add("# matviews refresh benchmark (P1, P2, P3)")
    add("")
    add(
        f"{env['date']} · {env['cpus']} CPUs ({env['cpu']}) · {env['mem']} · {env['server']} · "
        f"view `{VIEW}`: {P2_ROWS:,} rows, {view['bytes'] / 2**20:.0f} MB with indexes "
        f"({', '.join(view['indexes'])})"
        + (f" · sizes for P1/P3: {', '.join(f'{n:,}' for n in SIZES)} (P2 at {P2_ROWS:,})" if SWEEP else "")
        + f" · runs: P1 tiny {TINY_ITERS} calls, P1/P3 {RUNS}, "
        f"P2 {P2_RUNS} per strategy · server options: {SERVER_OPTS or '(pg_virtualenv defaults)'} · "
        f"load average at start {env['load_start']}, at end {env['load_end']}"
    )
    add("")
    add("| target | measured | target | measured / target | result |")
    add("| --- | --- | --- | --- | --- |")
    t = TARGETS
    add(
        f"| P1 tiny view: added by matviews.refresh(regular), median of {tiny['iters']} | "
        f"{tiny['added_ms']:+.3f} ms ({tiny['mv_median_ms']:.3f} vs {tiny['raw_median_ms']:.3f} ms) | "
        f"≤ {t['p1_tiny_ms']:g} ms | {tiny['added_ms'] / t['p1_tiny_ms']:.2f} | "
        f"{verdict(tiny['added_ms'] <= t['p1_tiny_ms'])} |"
    )
    m = big["median"]
    lo, hi = big["p1_ci"]
    p1_ratio = f"{big['p1_pct'] / t['p1_big_pct']:.2f}" if big["rows"] >= P1_PCT_ROWS else "-"
    add(
        f"| P1 {P2_ROWS:,}-row view: added by matviews.refresh(regular), median of {RUNS} | "
        f"{big['p1_pct']:+.1f} % ({fmt_ms(m['regular'])} vs {fmt_ms(m['raw'])}; 95 % CI {lo:+.1f} … {hi:+.1f} %) | "
        f"≤ {t['p1_big_pct']:g} % (at {P1_PCT_ROWS:,} rows) | {p1_ratio} | "
        f"{p1_pct_verdict(big)} |"
    )
    worst = {s: max(p2[s], key=lambda w: w["longest_stall_ms"]) for s in p2}
    for s, key in (("concurrent", "p2_concurrent_ms"), ("swap", "p2_swap_ms")):
        w = worst[s]
        add(
            f"| P2 longest read stall, {s} (worst of {len(p2[s])}) | {fmt_ms(w['longest_stall_ms'])} "
            f"(refresh {fmt_ms(w['total_ms'])}) | ≤ {t[key]:g} ms | "
            f"{w['longest_stall_ms'] / t[key]:.2f} | {verdict(w['longest_stall_ms'] <= t[key])} |"
        )
    w = worst["regular"]
    share = w["longest_stall_ms"] / w["total_ms"]
    add(
        f"| P2 longest read stall, regular (worst of {len(p2['regular'])}) | "
        f"{fmt_ms(w['longest_stall_ms'])} (refresh {fmt_ms(w['total_ms'])}) | "
        f"the whole refresh (no target) | {share:.2f} of the refresh | "
        f"{'as expected' if share >= 0.8 else 'UNEXPECTED'} |"
    )
    for key in (LONG_DEFAULT, LONG_SHORT, AUTOVACUUM, DEPENDENT):
        runs = p2.get(key)
        if not runs:
            continue
        w = max(runs, key=stall_of)
        lt = w["lock_timeout"] or env["swap_lock"][0]
        ok = stall_of(w) <= t["p2_swap_ms"]
        failed = [x["status"] for x in runs if x["status"] != "updated"]
        outcome = f"; {len(failed)} of {len(runs)} swaps failed: {failed[0]}" if failed else ""
        if key == DEPENDENT:
            add(
                f"| P2 extra: swap with a dependent materialized view of the view's size ({P2_ROWS:,} rows, "
                f"unique index), point reads on both, swap_lock_timeout = {lt} (worst of {len(runs)}) | "
                f"{fmt_ms(stall_of(w))}: view {fmt_ms(w['longest_stall_ms'])}, dependent "
                f"{fmt_ms(w['dep']['longest_stall_ms'])} (refresh {fmt_ms(w['total_ms'])}, "
                f"{w['lock_attempts'] or '-'} lock attempts{outcome}) | ≤ {t['p2_swap_ms']:g} ms | "
                f"{stall_of(w) / t['p2_swap_ms']:.2f} | {verdict(ok)} |"
            )
            continue
        if key == AUTOVACUUM:
            started = sum(1 for x in runs if x["vacuum_started"])
            what = (
                f"swap while autovacuum vacuums the view (started in {started} of {len(runs)} runs), "
                f"swap_lock_timeout = {lt}"
            )
        else:
            what = (
                f"swap beside a long-running reader ({w['long_reader_s']:g} s queries back to back), "
                f"swap_lock_timeout = {lt}"
            )
        add(
            f"| P2 extra: {what} (worst of {len(runs)}) | {fmt_ms(w['longest_stall_ms'])} "
            f"(refresh {fmt_ms(w['total_ms'])}, {w['lock_attempts'] or '-'} lock attempts{outcome}) | "
            f"≤ {t['p2_swap_ms']:g} ms | {w['longest_stall_ms'] / t['p2_swap_ms']:.2f} | {verdict(ok)} |"
        )
    # P3 holds at every size from 10k to 1M rows: the summary row is the worst size of the sweep
    # in that range (all sizes when none is in it); the per-size table below has the others.
    in_range = [x for x in sweep if P3_SIZES[0] <= x["rows"] <= P3_SIZES[1]] or sweep
    p3 = max(in_range, key=lambda x: x["p3_ratio"])
    lo, hi = p3["p3_ci"]
    where = f"worst of {len(in_range)} sizes: {p3['rows']:,} rows, " if len(sweep) > 1 else ""
    add(
        f"| P3 swap / regular total time, median of {RUNS} | {p3['p3_ratio']:.2f}× "
        f"({where}{fmt_ms(p3['median']['swap'])} vs {fmt_ms(p3['median']['regular'])}; 95 % CI {lo:.2f} … {hi:.2f}×) | "
        f"≤ {t['p3_ratio']:g}× | {p3['p3_ratio'] / t['p3_ratio']:.2f} | {verdict(p3['p3_ratio'] <= t['p3_ratio'])}"
        f"{inconclusive(lo, hi, t['p3_ratio'])} |"
    )
    add("")
    add(
        "CI: bootstrap interval of the value from the runs' noise alone; a target inside it is "
        "marked *inconclusive*: rerun at a quieter moment or with more --runs."
    )
    add("")
    if SWEEP:
        add(f"## P1 and P3 by view size (median of {RUNS} interleaved rounds each, no readers)")
        add("")
        add(
            "Each size is its own base table and view with the same two indexes. *matviews.refresh* is "
            "`matviews.refresh(strategy => 'regular')`: the P1 side against the raw REFRESH, and the regular "
            "refresh P3 divides the swap by (the same runs). P1 % has a target only at "
            f"{P1_PCT_ROWS:,} rows (≤ {t['p1_big_pct']:g} %), P3 at every size from {P3_SIZES[0]:,} to "
            f"{P3_SIZES[1]:,} rows (≤ {t['p3_ratio']:g}×); the added ms on the {TINY} view is the "
            f"≤ {t['p1_tiny_ms']:g} ms target (above)."
        )
        add("")
        add(
            "| rows | size with indexes | raw REFRESH | matviews.refresh (regular) | P1 added (95 % CI) | "
            "P1 % (95 % CI) | swap | P3 swap / regular (95 % CI) | P1 verdict | P3 verdict |"
        )
        add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        add(
            f"| {TINY} (10) | - | {tiny['raw_median_ms']:.3f} ms | {tiny['mv_median_ms']:.3f} ms | "
            f"{tiny['added_ms']:+.3f} ms | - | - | - | {verdict(tiny['added_ms'] <= t['p1_tiny_ms'])} "
            f"(≤ {t['p1_tiny_ms']:g} ms) | - |"
        )
        for x in sweep:
            mm = x["median"]
            (alo, ahi), (plo, phi), (rlo, rhi) = x["p1_added_ci"], x["p1_ci"], x["p3_ci"]
            add(
                f"| {x['rows']:,} | {x['bytes'] / 2**20:,.0f} MB | {fmt_ms(mm['raw'])} | {fmt_ms(mm['regular'])} | "
                f"{x['p1_added_ms']:+.2f} ms ({alo:+.2f} … {ahi:+.2f}) | {x['p1_pct']:+.1f} % ({plo:+.1f} … {phi:+.1f}) | "
                f"{fmt_ms(mm['swap'])} | {x['p3_ratio']:.2f}× ({rlo:.2f} … {rhi:.2f}) | {p1_pct_verdict(x)} | "
                f"{p3_verdict(x)} |"
            )
        add("")
    add("## P2: point reads during one refresh of each strategy")
    add("")
    add(
        "A separate process reads one row by primary key in a loop (prepared statement, "
        "autocommit) while another connection runs `matviews.refresh(..., strategy => ...)` after "
        "1 % of the base rows changed. Stall: the longest time no read completed while the refresh "
        f"ran. Baseline: the same loop in the {PAD_BEFORE_S:g} s before the refresh."
        # Only the extra scenarios that ran are described.
        + (
            f" *swap + long reader*: a third connection runs `SELECT pg_sleep({LONG_READER_S:g}), id FROM {VIEW} "
            "WHERE id = 1` back to back, so the swap's exclusive-lock request waits behind it, for at most "
            "`matviews.swap_lock_timeout` per attempt, and the point reads queue behind that request."
            if p2.get(LONG_DEFAULT)
            else ""
        )
        + (
            f" *swap during an autovacuum*: autovacuum is off for `{VIEW}` in every other measurement; here "
            f"it is turned on (naptime 1 s, the view's autovacuum_vacuum_cost_limit {AUTOVACUUM_COST_LIMIT}) and "
            "the swap starts once a worker is vacuuming the view, whose ShareUpdateExclusiveLock conflicts with "
            "the swap's exclusive lock."
            if p2.get(AUTOVACUUM)
            else ""
        )
        + (
            f" *swap with a dependent*: `CREATE MATERIALIZED VIEW {DEP} AS SELECT id, val + 1 AS w FROM {VIEW}` "
            f"(populated, a unique index on id, autovacuum off) exists during that swap only, and a second "
            f"process reads it by id the same way; the swap drops and re-creates it."
            if p2.get(DEPENDENT)
            else ""
        )
    )
    add("")
    add(
        "| strategy | refresh total | longest stall | stall / refresh | reads | p50 | p99 | max | "
        "baseline stall | baseline p99 | read errors | swap lock attempts / wait |"
    )
    add("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in p2:
        for w in p2[s]:
            lock = (
                f"{w['lock_attempts']} / {w['lock_wait_ms']:.1f} ms" if w.get("lock_attempts") is not None else "-"
            )
            label = s if w["status"] == "updated" else f"{s} ({w['status']})"
            add(
                f"| {label}{f' (reads on {VIEW})' if w.get('dep') else ''} | {fmt_ms(w['total_ms'])} | "
                f"{fmt_ms(w['longest_stall_ms'])} | "
                f"{w['longest_stall_ms'] / w['total_ms']:.3f} | {w['reads']:,} | {fmt_ms(w['p50_ms'])} | "
                f"{fmt_ms(w['p99_ms'])} | {fmt_ms(w['max_ms'])} | {fmt_ms(w['baseline_stall_ms'])} | "
                f"{fmt_ms(w['baseline_p99_ms'])} | {w['errors']} | {lock} |"
            )
            d = w.get("dep")
            if d:
                add(
                    f"| {label} (reads on {DEP}) | {fmt_ms(w['total_ms'])} | {fmt_ms(d['longest_stall_ms'])} | "
                    f"{d['longest_stall_ms'] / w['total_ms']:.3f} | {d['reads']:,} | {fmt_ms(d['p50_ms'])} | "
                    f"{fmt_ms(d['p99_ms'])} | {fmt_ms(d['max_ms'])} | {fmt_ms(d['baseline_stall_ms'])} | - | "
                    f"{d['errors']} | {lock} |"
                )
    diag = p2.get("swap (BEGIN/COMMIT)")
    if diag and diag[0].get("blocked_read_ms") is not None:
        w = diag[0]
        released = w["blocked_read_ms"] - w["in_function_ms"]
        add("")
        add(
            "Where the swap's stall comes from (the extra run inside `BEGIN; SELECT matviews.refresh(...); "
            f"COMMIT`): the read in flight when the function returned waited {fmt_ms(w['blocked_read_ms'])} "
            f"in all: {fmt_ms(w['in_function_ms'])} from its start (about when the swap took its exclusive "
            f"lock; lock_wait_ms {w['lock_wait_ms']:.1f}) to the function's return, then "
            f"{fmt_ms(released)} inside `COMMIT` until the locks were released. `COMMIT` itself took "
            f"{fmt_ms(w['commit_ms'])}: the remaining {fmt_ms(w['commit_ms'] - released)} (unlinking the "
            "old relation's files) came after the readers were already running again."
        )
    add("")
    add("## Swaps and autovacuum")
    add("")
    slow = [x for x in SWAPS if (x[3] or 0) > 1 or x[4] != "updated"]
    av = env.get("autovacuum")
    if av is None:
        add("The server log was not found; autovacuum runs were not matched.")
    else:
        vac = [a for a in av if a[0] == "vacuum"]
        ana = [a for a in av if a[0] == "analyze"]
        durs = sorted(a[2] - a[1] for a in vac)
        add(
            f"Autovacuum vacuumed `{VIEW}` {len(vac)} times ({durs[0]:.1f} to {durs[-1]:.1f} s each) and "
            f"analyzed it {len(ana)} times (it is enabled for the view only in the autovacuum scenario)."
            if vac
            else f"Autovacuum did not vacuum `{VIEW}` during the run ({len(ana)} automatic analyzes)."
        )
    add("")
    lines_slow = []
    for label, w0, w1, attempts, status in slow:
        overlap = av and any(a[0] == "vacuum" and a[1] < w1 and a[2] > w0 for a in av)
        lines_slow.append(
            f"{label} swap of {(w1 - w0) * 1000:,.0f} ms: {attempts or '-'} lock attempts, {status}"
            + (", during an autovacuum of the view" if overlap else "")
        )
    add(
        f"Swaps that needed more than one lock attempt (or failed): {len(slow)} of {len(SWAPS)}"
        + (": " + "; ".join(lines_slow) + "." if slow else ".")
    )
    add("")
    add(f"## P1 and P3: total time on the {P2_ROWS:,}-row view, no readers (each after a CHECKPOINT)")
    add("")
    add("| operation | runs (ms) | median |")
    add("| --- | --- | --- |")
    labels = {
        "raw": "REFRESH MATERIALIZED VIEW",
        "regular": "matviews.refresh(strategy => 'regular')",
        "swap": "matviews.refresh(strategy => 'swap')",
    }
    for k in ("raw", "regular", "swap"):
        add(f"| {labels[k]} | {', '.join(f'{x:,.0f}' for x in big['times'][k])} | {fmt_ms(m[k])} |")
    add("")
    add(
        f"swap / raw REFRESH: {big['p3_ratio_raw']:.2f}×. P1 per round (matviews regular vs the raw REFRESH "
        f"of the same round), median: {big['p1_paired_pct']:+.1f} %. Run-to-run noise: the raw REFRESH runs' "
        f"interquartile range is {big['raw_iqr_pct']:.1f} % of their median."
    )
    add("")
    add(
        f"P1 tiny view ({TINY_ITERS} calls each, alternating): REFRESH median {tiny['raw_median_ms']:.3f} ms "
        f"(p90 {tiny['raw_p90_ms']:.3f}), matviews.refresh median {tiny['mv_median_ms']:.3f} ms "
        f"(p90 {tiny['mv_p90_ms']:.3f})."
    )
    add("")
    add(f"Benchmark wall time: {env['elapsed_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def environment():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 2**20:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem": mem,
        "host": platform.node(),
        "load_start": "%.2f %.2f %.2f" % os.getloadavg(),
    }


# ----------------------------------------------------------------------------------------------
# P1 and P3 by view size: CSV and PNG


def write_sizes_csv(sweep, tiny, path):
    # One row per size (the tiny view first: its P1 added ms is the tiny-view target; it has no
    # swap, so no P3), medians and 95 % intervals as in the report.
    with open(path, "w") as f:
        f.write(
            "view,rows,runs,raw_median_ms,regular_median_ms,swap_median_ms,p1_added_ms,p1_added_ci_lo,"
            "p1_added_ci_hi,p1_pct,p1_pct_ci_lo,p1_pct_ci_hi,p3_ratio,p3_ci_lo,p3_ci_hi,bytes\n"
        )
        f.write(
            f"{TINY},10,{tiny['iters']},{tiny['raw_median_ms']:.4f},{tiny['mv_median_ms']:.4f},,"
            f"{tiny['added_ms']:.4f},,,"
            f"{tiny['added_ms'] / tiny['raw_median_ms'] * 100.0:.3f},,,,,,\n"
        )
        for x in sweep:
            m = x["median"]
            f.write(
                f"{VIEW},{x['rows']},{RUNS},{m['raw']:.3f},{m['regular']:.3f},{m['swap']:.3f},"
                f"{x['p1_added_ms']:.3f},{x['p1_added_ci'][0]:.3f},{x['p1_added_ci'][1]:.3f},"
                f"{x['p1_pct']:.3f},{x['p1_ci'][0]:.3f},{x['p1_ci'][1]:.3f},"
                f"{x['p3_ratio']:.4f},{x['p3_ci'][0]:.4f},{x['p3_ci'][1]:.4f},{x['bytes']}\n"
            )


def plot_sizes(sweep, tiny):
    # Two panels over the view size (log x): P1 added ms (left axis, with the tiny view at 10
    # rows and its target) and added % (right axis, with its target at 1M rows); P3 swap /
    # regular with the 95 % intervals and the target line. Without matplotlib only the CSV.
    csv = os.path.join(RESULTS, "p1_p3_by_size.csv")
    write_sizes_csv(sweep, tiny, csv)
    plt = import_pyplot()
    if plt is None:
        log("plot: no matplotlib, p1_p3_by_size.png skipped (the CSV is written)")
        return [csv]
    path = os.path.join(RESULTS, "p1_p3_by_size.png")
    t = TARGETS
    rows = [x["rows"] for x in sweep]
    fig, (a1, a3) = plt.subplots(2, 1, figsize=(9, 9), constrained_layout=True, sharex=True)

    a1.errorbar(
        rows,
        [x["p1_added_ms"] for x in sweep],
        yerr=[
            [x["p1_added_ms"] - x["p1_added_ci"][0] for x in sweep],
            [x["p1_added_ci"][1] - x["p1_added_ms"] for x in sweep],
        ],
        marker="o",
        color="tab:blue",
        capsize=3,
        label="P1 added ms (median)",
    )
    # The tiny view is its own measurement (many calls, not --runs rounds): a point apart.
    a1.scatter(
        [10],
        [tiny["added_ms"]],
        s=50,
        marker="D",
        color="tab:blue",
        zorder=3,
        label=f"P1 added ms, {TINY} (median of {tiny['iters']} calls)",
    )
    a1.axhline(t["p1_tiny_ms"], color="tab:blue", ls="--", lw=1, label=f"target ≤ {t['p1_tiny_ms']:g} ms (tiny view)")
    a1.axhline(0, color="#888", lw=0.6)
    a1.set_ylabel("matviews.refresh(regular) − REFRESH (ms)", color="tab:blue")
    a1.set_xscale("log")
    # Symmetric log: the tiny view's fraction of a ms and the big views' tens of ms of noise
    # (either sign) both stay readable, and so does the 0.25 ms target line.
    a1.set_yscale("symlog", linthresh=0.1)
    a1.set_xlim(5, max(rows) * 2)
    a1.grid(True, which="both", alpha=0.3)
    b1 = a1.twinx()
    b1.errorbar(
        rows,
        [x["p1_pct"] for x in sweep],
        yerr=[[x["p1_pct"] - x["p1_ci"][0] for x in sweep], [x["p1_ci"][1] - x["p1_pct"] for x in sweep]],
        marker="s",
        color="tab:red",
        capsize=3,
        label="P1 added % (median)",
    )
    b1.axhline(t["p1_big_pct"], color="tab:red", ls="--", lw=1, label=f"target ≤ {t['p1_big_pct']:g} % (1M rows)")
    b1.set_ylabel("added % of REFRESH", color="tab:red")
    h1, l1 = a1.get_legend_handles_labels()
    h2, l2 = b1.get_legend_handles_labels()
    # Below the panel: inside it, it would cover the points.
    a1.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=3, fontsize=7)
    a1.set_title(
        f"P1: matviews.refresh(regular) vs raw REFRESH MATERIALIZED VIEW, median of {RUNS} (95 % CI)", fontsize=10
    )

    a3.errorbar(
        rows,
        [x["p3_ratio"] for x in sweep],
        yerr=[[x["p3_ratio"] - x["p3_ci"][0] for x in sweep], [x["p3_ci"][1] - x["p3_ratio"] for x in sweep]],
        marker="o",
        color="tab:purple",
        capsize=3,
        label="swap / regular (median)",
    )
    a3.axhline(t["p3_ratio"], color="tab:purple", ls="--", lw=1, label=f"target ≤ {t['p3_ratio']:g}×")
    a3.axhline(1.0, color="#888", lw=0.6)
    a3.axvspan(P3_SIZES[0], P3_SIZES[1], color="tab:purple", alpha=0.05, label="target range of sizes")
    for x in sweep:
        a3.annotate(
            f"{x['p3_ratio']:.2f}×", (x["rows"], x["p3_ratio"]), textcoords="offset points", xytext=(6, 4), fontsize=8
        )
    a3.set_xscale("log")
    a3.set_xlabel("rows in the view (log scale)")
    a3.set_ylabel("swap total / regular total")
    a3.grid(True, which="both", alpha=0.3)
    a3.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=7)
    a3.set_title(f"P3: swap vs regular refresh of the same view and indexes, median of {RUNS} (95 % CI)", fontsize=10)
    fig.suptitle(f"matviews refresh by view size ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs)", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [csv, path]


# ----------------------------------------------------------------------------------------------
# Plot: reader latency over time during each strategy


def plotted(p2):
    # The first run of each strategy, and of the autovacuum and dependent scenarios when they ran.
    return [k for k in ("regular", "concurrent", "swap", AUTOVACUUM, DEPENDENT) if p2.get(k)]


def traces(w):
    # (label, trace) of each read loop of a run: the view's, and the dependent's when it had one.
    out = [(VIEW, w["trace"])]
    if w.get("dep"):
        out.append((DEP, w["dep"]["trace"]))
    return out


def write_trace_csv(p2, path):
    with open(path, "w") as f:
        f.write("strategy,relation,t_since_refresh_start_ms,latency_ms,in_refresh\n")
        for s in plotted(p2):
            for rel, (starts, ends, t0, t1) in traces(p2[s][0]):
                for a, b in zip(starts, ends):
                    f.write(f"{s},{rel},{(b - t0) / 1e6:.3f},{(b - a) / 1e6:.3f},{int(b >= t0 and a <= t1)}\n")


def import_pyplot():
    # matplotlib with the file-only backend, or None when it is not installed.
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(p2, sweep, tiny):
    files = plot_sizes(sweep, tiny) if SWEEP else []
    csv = os.path.join(RESULTS, "reader_latency.csv")
    write_trace_csv(p2, csv)
    plt = import_pyplot()
    if plt is None:
        path = os.path.join(RESULTS, "reader_latency.svg")
        plot_svg(p2, path)
        return files + [csv, path]
    path = os.path.join(RESULTS, "reader_latency.png")
    strategies = plotted(p2)
    fig, axes = plt.subplots(len(strategies), 1, figsize=(10, 2.9 * len(strategies)), constrained_layout=True)
    for ax, s in zip(axes, strategies):
        w = p2[s][0]
        starts, ends, t0, t1 = w["trace"]
        xs = [(b - t0) / 1e9 for b in ends]
        ys = [max((b - a) / 1e6, 1e-3) for a, b in zip(starts, ends)]
        ax.axvspan(0, (t1 - t0) / 1e9, color="tab:orange", alpha=0.15, label="refresh running")
        ax.scatter(
            xs,
            ys,
            s=2,
            color="tab:blue",
            rasterized=True,
            label=f"point read on {VIEW}" if w.get("dep") else "point read (completion)",
        )
        if w.get("dep"):
            ds, de, _, _ = w["dep"]["trace"]
            ax.scatter(
                [(b - t0) / 1e9 for b in de],
                [max((b - a) / 1e6, 1e-3) for a, b in zip(ds, de)],
                s=2,
                color="tab:green",
                rasterized=True,
                label=f"point read on {DEP}",
            )
            ax.legend(loc="upper right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("read latency (ms)")
        ax.set_title(
            f"{s}: refresh {w['total_ms']:,.0f} ms, longest stall {w['longest_stall_ms']:,.1f} ms"
            + (f" ({DEP}: {w['dep']['longest_stall_ms']:,.1f} ms)" if w.get("dep") else "")
            + f", p99 {w['p99_ms']:.2f} ms"
            + (f", {w['lock_attempts']} lock attempts" if w.get("lock_attempts") else ""),
            fontsize=10,
        )
        ax.grid(True, which="major", alpha=0.3)
    axes[-1].set_xlabel("seconds since the refresh call")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(f"Point-read latency during matviews.refresh of a {P2_ROWS:,}-row view")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return files + [csv, path]


def plot_svg(p2, path):
    # Dependency-free fallback: per 10 ms bucket, the slowest read that completed in it.
    strategies = plotted(p2)
    W, H, M = 900, 230, 60
    height = H * len(strategies) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="11">']
    out.append(f'<rect width="{W}" height="{height}" fill="white"/>')
    out.append(
        f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">Point-read latency (slowest per 10 ms, log scale) '
        f"during matviews.refresh of a {P2_ROWS:,}-row view</text>"
    )
    import math

    for i, s in enumerate(strategies):
        w = p2[s][0]
        starts, ends, t0, t1 = w["trace"]
        xmin = (ends[0] - t0) / 1e9 if ends else -1
        xmax = (ends[-1] - t0) / 1e9 if ends else 1
        top_ms = max(w["max_ms"], w["dep"]["max_ms"] if w.get("dep") else 0)
        ymin, ymax = -2.0, max(1.0, math.log10(max(top_ms, 1)) + 0.3)
        top = 30 + i * H
        ph = H - 50

        def X(x):
            return M + (x - xmin) / (xmax - xmin or 1) * (W - M - 20)

        def Y(ms):
            v = math.log10(max(ms, 10**ymin))
            return top + 20 + (ymax - v) / (ymax - ymin) * ph

        out.append(
            f'<rect x="{X(0):.1f}" y="{top + 20}" width="{X((t1 - t0) / 1e9) - X(0):.1f}" height="{ph}" fill="orange" opacity="0.2"/>'
        )
        out.append(
            f'<rect x="{M}" y="{top + 20}" width="{W - M - 20}" height="{ph}" fill="none" stroke="#888"/>'
        )
        for d in range(int(math.ceil(ymin)), int(ymax) + 1):
            y = Y(10**d)
            out.append(f'<line x1="{M}" x2="{W - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{M - 5}" y="{y + 4:.1f}" text-anchor="end">{10 ** d:g} ms</text>')
        for (rel, (rs, re_, _, _)), color in zip(traces(w), ("steelblue", "seagreen")):
            buckets = {}
            for a, b in zip(rs, re_):
                k = (b - t0) // 10_000_000
                buckets[k] = max(buckets.get(k, 0), (b - a) / 1e6)
            for k, ms in sorted(buckets.items()):
                out.append(f'<circle cx="{X(k / 100):.1f}" cy="{Y(ms):.1f}" r="1.5" fill="{color}"/>')
        out.append(
            f'<text x="{M}" y="{top + 14}">{s}: refresh {w["total_ms"]:,.0f} ms, longest stall '
            f'{w["longest_stall_ms"]:,.1f} ms'
            + (f' ({DEP}, green: {w["dep"]["longest_stall_ms"]:,.1f} ms)' if w.get("dep") else "")
            + f', p99 {w["p99_ms"]:.2f} ms (shaded: refresh running; x: {xmin:.1f} to {xmax:.1f} s)</text>'
        )
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


# ----------------------------------------------------------------------------------------------


def on_alarm(signum, frame):
    raise TimeoutError(f"the benchmark ran longer than BENCH_TIMEOUT={TIMEOUT_S} s")


def main():
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT_S)
    started = time.monotonic()
    os.makedirs(RESULTS, exist_ok=True)
    env = environment()
    ctl = connect()
    cur = ctl.cursor()
    env["server"] = "PostgreSQL " + q1(cur, "SHOW server_version").split()[0]
    for name in ("shared_buffers", "fsync", "synchronous_commit", "max_wal_size", "wal_level"):
        env["server"] += f", {name}={q1(cur, f'SHOW {name}')}"
    cur.execute("SET matviews.swap_lock_timeout = DEFAULT")
    env["swap_lock"] = (q1(cur, "SHOW matviews.swap_lock_timeout"), q1(cur, "SHOW matviews.swap_lock_attempts"))
    env["server"] += f", matviews.swap_lock_timeout={env['swap_lock'][0]}, swap_lock_attempts={env['swap_lock'][1]}"
    setup_tiny(cur)
    tiny = p1_tiny(cur)

    # Ascending sizes; P2 at the largest (the last), before its P1/P3 as in the one-size run.
    sweep = []
    for rows in SIZES:
        view = setup(cur, rows)
        if rows == P2_ROWS:
            p2 = p2_all(ctl)
        sweep.append(p1_p3(ctl, rows, view))

    try:
        env["autovacuum"] = autovacuum_runs(cur)
    except (OSError, ValueError) as e:
        log(f"could not read autovacuum runs from the server log: {e}")
        env["autovacuum"] = None
    env["elapsed_s"] = time.monotonic() - started
    env["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
    text = report(env, view, tiny, p2, sweep)
    extra = []
    if PLOT:
        extra = plot(p2, sweep, tiny)
    signal.alarm(0)
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"written: {os.path.join(RESULTS, 'latest.md')}" + "".join(f", {p}" for p in extra))


def p2_all(ctl):
    # Every P2 run, at the current (largest) size: the three strategies, then the extra swap
    # scenarios.
    p2 = {}
    for r in range(P2_RUNS):
        for s in ("regular", "concurrent", "swap"):
            p2.setdefault(s, []).append(p2_run(ctl, s))
    p2["swap (BEGIN/COMMIT)"] = [p2_run(ctl, "swap", explicit_transaction=True)]
    if LONG_READER_S > 0:
        # Extra scenarios : a long-running reader beside the point reads, with the
        # default swap_lock_timeout and with one below the P2 swap target.
        for r in range(P2_RUNS):
            p2.setdefault(LONG_DEFAULT, []).append(p2_run(ctl, "swap", long_reader_s=LONG_READER_S))
        for r in range(P2_RUNS):
            p2.setdefault(LONG_SHORT, []).append(
                p2_run(ctl, "swap", long_reader_s=LONG_READER_S, lock_timeout=SHORT_LOCK_TIMEOUT)
            )
    if AUTOVACUUM_SCENARIO:
        for r in range(P2_RUNS):
            p2.setdefault(AUTOVACUUM, []).append(p2_run(ctl, "swap", autovacuum=True))
    if DEP_SCENARIO:
        # Last: the dependent exists only during its own swap (p2_run drops it), so no other
        # measurement pays for re-creating it.
        for r in range(P2_RUNS):
            p2.setdefault(DEPENDENT, []).append(p2_run(ctl, "swap", dependent=True))
    return p2


if __name__ == "__main__":
    main()
