"""matviews watch benchmark: P5 (capture cost on writers) and P7 (commit -> refresh latency).

Runs inside the throw-away cluster that bench/watch_bench.sh starts with pg_virtualenv (PGHOST,
PGPORT, PGUSER, PGPASSWORD and PGDATABASE come from it). Do not run it against a real database:
it creates and drops tables, triggers and materialized views in the current database.

  P5  pgbench single-row UPDATEs (`\\set id random(1, :rows)`, `UPDATE bench_t SET v = v + 1
      WHERE id = :id`, -n -M prepared -c N -j N -T secs, per-transaction log for latencies) on a
      BENCH_ROWS table read by a managed GROUP BY view (concurrent strategy, unique index on grp),
      in the modes
        none     no trigger on the table, the view not watched;
        floor    a plpgsql no-op statement trigger (AFTER INSERT OR UPDATE OR DELETE ... FOR EACH
                 STATEMENT, RETURN NULL): what the cheapest user-level statement trigger costs;
        watch    matviews.watch(view, min_interval => '1 second'): refreshes run in the
                 background during the load, as in a real deployment;
        capture  matviews.watch(view, min_interval => '1 hour'): the writers pay for the capture
                 (trigger, commit-time marking, latch) but the scheduler refreshes at most once,
                 so that the capture's cost can be told apart from the refreshes' CPU.
      Runs are interleaved (for each repetition, for each client count, every mode, the mode order
      rotating), each after an untimed VACUUM of the table and a CHECKPOINT.
  A/B the same pgbench load, but one table per mode (none, floor, watch) and one pgbench run per
      (rep, clients) that picks the table at random for every transaction (-f a@1 -f b@1 ...):
      the modes share every moment's CPU, steal and disk, and a mode's cost is its mean latency
      against none's in the same run (the refreshes' CPU is shared by all tables, not charged).
  P7  a writer paced at BENCH_P7_RATE single-row UPDATE commits/s (autocommit) for BENCH_P7_SECS
      on a BENCH_P7_ROWS table per strategy (concurrent, swap), the view watched with min_interval
      '0'. Each commit's time is the server's clock_timestamp() read right after the commit; the
      run that includes it is the first 'watch' run of the view whose started_at is after it.

Settings come from the environment (watch_bench.sh maps its flags onto them): BENCH_ROWS
(1000000), BENCH_REPS (3), BENCH_SECS (20), BENCH_CLIENTS (1,4,8), BENCH_MODES
(none,floor,watch,capture), BENCH_P7_SECS (20), BENCH_P7_ROWS (100000), BENCH_P7_RATE (100),
BENCH_PARTS (p5,ab,p7), BENCH_PLOT (0/1), BENCH_TIMEOUT (3600 s for the whole run), BENCH_PGBENCH,
BENCH_SERVER_OPTS and BENCH_LOAD_START (shown in the report).
"""

import bisect
import datetime
import glob
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
SECS = int(os.environ.get("BENCH_SECS", "20"))
CLIENTS = [int(x) for x in os.environ.get("BENCH_CLIENTS", "1,4,8").split(",")]
MODES = os.environ.get("BENCH_MODES", "none,floor,watch,capture").split(",")
P7_SECS = int(os.environ.get("BENCH_P7_SECS", "20"))
P7_ROWS = int(os.environ.get("BENCH_P7_ROWS", "100000"))
P7_RATE = int(os.environ.get("BENCH_P7_RATE", "100"))
PARTS = os.environ.get("BENCH_PARTS", "p5,ab,p7").split(",")
PLOT = os.environ.get("BENCH_PLOT", "0") == "1"
TIMEOUT_S = int(os.environ.get("BENCH_TIMEOUT", "3600"))
PGBENCH = os.environ.get("BENCH_PGBENCH") or shutil.which("pgbench") or "pgbench"
SERVER_OPTS = os.environ.get("BENCH_SERVER_OPTS", "")
LOAD_START = os.environ.get("BENCH_LOAD_START") or "%.2f %.2f %.2f" % os.getloadavg()
GIT_REV = os.environ.get("BENCH_GIT_REV", "unknown")

TABLE = "bench_t"
VIEW = "bench_watch_mv"
FLOOR_TRIGGER = "bench_floor"
WATCH_INTERVAL = {"watch": "1 second", "capture": "1 hour"}
P7_STRATEGIES = ("concurrent", "swap")
WARMUP_S = 5
STATEMENT_TIMEOUT = "10min"
TRIGGER_GONE_WAIT_S = float(os.environ.get("BENCH_TRIGGER_GONE_WAIT_S", "10"))  # how long to wait for unwatch's trigger to go before dropping it
IDLE_WAIT_S = 120.0  # how long to wait for a view's queued/running runs to end

TARGETS = {"p5_drop_pct": 3.0, "p5_scaling": 0.97, "p7_p99_ms": 50.0}
MODE_LABEL = {
    "none": "none (no trigger)",
    "floor": "floor (plpgsql no-op statement trigger)",
    "watch": "watch (min_interval 1 s)",
    "capture": "capture (watch, min_interval 1 h)",
}
MODE_TEXT = {
    "none": "no trigger on the table, the view not watched",
    "floor": "a plpgsql no-op statement trigger on the table",
    "watch": "`matviews.watch(view, min_interval => '1 second')`: refreshes run in the background during the load",
    "capture": "`matviews.watch(view, min_interval => '1 hour')`: the writers pay for the capture (trigger, "
    "commit-time marking, the scheduler's wake-up) but the view is refreshed at most once, which tells "
    "the capture's own cost apart from the refreshes' CPU",
}

# Things worth telling the reader that are not measurements (dropped triggers, failed runs...).
NOTES = []


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def note(msg):
    NOTES.append(msg)
    log("note: " + msg)


def connect():
    conn = psycopg2.connect("", application_name="matviews-watch-bench")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    return conn


def q1(cur, sql, args=None):
    cur.execute(sql, args)
    row = cur.fetchone()
    return row[0] if row else None


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p, presorted=False):
    # Nearest-rank percentile.
    if not xs:
        return float("nan")
    s = xs if presorted else sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def check_response(resp, what):
    if isinstance(resp, str):
        resp = json.loads(resp)
    if resp is None or resp.get("status") in ("error", "skipped"):
        raise RuntimeError(f"{what}: {json.dumps(resp)[:2000]}")
    return resp


def cpu_times():
    # The machine's CPU counters (/proc/stat, jiffies): user nice system idle iowait irq softirq steal.
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def cpu_share(a, b):
    # Busy, iowait and steal shares of all CPU time between two cpu_times() readings, in %.
    if not a or not b:
        return None
    d = [y - x for x, y in zip(a, b)]
    total = sum(d) or 1
    return {
        "busy": (d[0] + d[1] + d[2] + d[5] + d[6]) * 100.0 / total,
        "iowait": d[4] * 100.0 / total,
        "steal": d[7] * 100.0 / total,
    }


def server_now(cur):
    return q1(cur, "SELECT extract(epoch FROM clock_timestamp())::float8")


def view_filter():
    # matviews.runs.view may hold the name with or without its schema.
    return "(view = %(v)s OR view = 'public.' || %(v)s)"


# ----------------------------------------------------------------------------------------------
# Triggers and watch state


def user_triggers(cur, table):
    cur.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY tgname",
        (table,),
    )
    return [r[0] for r in cur.fetchall()]


def watch_triggers(cur, table):
    return [t for t in user_triggers(cur, table) if t.startswith("matviews_watch")]


def is_watched(cur, view):
    return bool(q1(cur, "SELECT watched FROM matviews.status WHERE view IN (%s, 'public.' || %s)", (view, view)))


def wait_idle(cur, view, since=None):
    # Until the view has no queued or running run due within a minute (a refresh left over from
    # the previous mode must not land in the next measurement; the capture mode's watch queues
    # its run an hour ahead). Returns the seconds waited.
    t0 = time.monotonic()
    while True:
        n = q1(
            cur,
            f"SELECT count(*) FROM matviews.runs WHERE {view_filter()} AND status IN ('queued', 'running') "
            "AND COALESCE(run_at, now()) < now() + interval '1 minute'",
            {"v": view},
        )
        if not n:
            return time.monotonic() - t0
        if time.monotonic() - t0 > IDLE_WAIT_S:
            raise RuntimeError(f"{view} still has {n} queued/running runs after {IDLE_WAIT_S:.0f} s")
        time.sleep(0.1)


UNWATCH_STATS = {"unwatches": 0, "gone_by_itself": 0, "dropped_by_bench": 0, "gone_after_s": []}


def unwatch(cur, view, table):
    # matviews.unwatch, then make sure no matviews_watch trigger is left on the table: unwatch may
    # leave it to the scheduler to remove; after TRIGGER_GONE_WAIT_S we drop it ourselves.
    check_response(q1(cur, "SELECT matviews.unwatch(%s)", (view,)), f"unwatch {view}")
    UNWATCH_STATS["unwatches"] += 1
    t0 = time.monotonic()
    while watch_triggers(cur, table) and time.monotonic() - t0 < TRIGGER_GONE_WAIT_S:
        time.sleep(0.1)
    left = watch_triggers(cur, table)
    if left:
        for t in left:
            cur.execute(f"DROP TRIGGER IF EXISTS {t} ON {table}")
        UNWATCH_STATS["dropped_by_bench"] += 1
    else:
        UNWATCH_STATS["gone_by_itself"] += 1
        UNWATCH_STATS["gone_after_s"].append(time.monotonic() - t0)
    if is_watched(cur, view):
        raise RuntimeError(f"{view} is still watched after matviews.unwatch")


def watch(cur, view, table, interval):
    resp = check_response(
        q1(cur, "SELECT matviews.watch(%s, min_interval => %s)", (view, interval)), f"watch {view}"
    )
    if not watch_triggers(cur, table):
        raise RuntimeError(
            f"matviews.watch({view}) left no matviews_watch trigger on {table} (triggers: "
            f"{user_triggers(cur, table)}); response {json.dumps(resp)[:500]}"
        )
    if not is_watched(cur, view):
        raise RuntimeError(f"matviews.status does not show {view} as watched after matviews.watch")
    return resp


_state = {"mode": "none"}


def set_mode(cur, mode):
    # From whatever the previous mode left to `mode`, then check the table's triggers.
    prev = _state["mode"]
    if prev == mode:
        pass
    else:
        if prev == "floor":
            cur.execute(f"DROP TRIGGER IF EXISTS {FLOOR_TRIGGER} ON {TABLE}")
        elif prev in WATCH_INTERVAL:
            unwatch(cur, VIEW, TABLE)
        wait_idle(cur, VIEW)
        if mode == "floor":
            cur.execute(
                f"CREATE TRIGGER {FLOOR_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {TABLE} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bench_noop_trigger()"
            )
        elif mode in WATCH_INTERVAL:
            watch(cur, VIEW, TABLE, WATCH_INTERVAL[mode])
        _state["mode"] = mode
    trig = user_triggers(cur, TABLE)
    expect_ok = {
        "none": trig == [],
        "floor": trig == [FLOOR_TRIGGER],
        "watch": bool(trig) and all(t.startswith("matviews_watch") for t in trig),
        "capture": bool(trig) and all(t.startswith("matviews_watch") for t in trig),
    }[mode]
    if not expect_ok:
        raise RuntimeError(f"mode {mode}: unexpected triggers on {TABLE}: {trig}")
    return trig


# ----------------------------------------------------------------------------------------------
# P5


def setup_p5(cur):
    log(f"P5 setup: {TABLE} with {ROWS:,} rows, managed view {VIEW} (GROUP BY grp, concurrent)")
    cur.execute(f"SELECT matviews.delete('{VIEW}')")
    cur.execute(f"DROP TABLE IF EXISTS {TABLE} CASCADE")
    # Autovacuum off for the table: the benchmark vacuums it before every run, so no autovacuum
    # lands at random in one mode's measurement.
    cur.execute(
        f"CREATE TABLE {TABLE} (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL) "
        "WITH (autovacuum_enabled = off)"
    )
    cur.execute(f"INSERT INTO {TABLE} SELECT g, g %% 1000, 0 FROM generate_series(1, %s) g", (ROWS,))
    cur.execute(f"VACUUM ANALYZE {TABLE}")
    t0 = time.monotonic()
    check_response(
        q1(
            cur,
            "SELECT matviews.create(%s, %s, refresh_strategy => 'concurrent', unique_index_columns => ARRAY['grp'])",
            (VIEW, f"SELECT grp, sum(v) AS total, count(*) AS n FROM public.{TABLE} GROUP BY grp"),
        ),
        f"create {VIEW}",
    )
    log(f"P5 setup: {VIEW} created in {time.monotonic() - t0:.2f} s")
    cur.execute(
        "CREATE OR REPLACE FUNCTION bench_noop_trigger() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN RETURN NULL; END$$"
    )
    t0 = time.monotonic()
    check_response(q1(cur, "SELECT matviews.refresh(%s)", (VIEW,)), f"refresh {VIEW}")
    one_refresh_ms = (time.monotonic() - t0) * 1000
    size = q1(cur, "SELECT pg_total_relation_size(%s::regclass)", (TABLE,))
    return {"table_bytes": size, "refresh_ms": one_refresh_ms}


def update_script(table):
    return f"""\\set id random(1, :rows)
UPDATE {table} SET v = v + 1 WHERE id = :id;
"""


def run_pgbench(workdir, clients, secs, tables=(TABLE,)):
    # One pgbench run; with several tables, one script per table, chosen at random per
    # transaction with equal weights (pgbench -f a@1 -f b@1 ...), so every table sees the same
    # clients, CPU and disk at the same moments. Latencies come from the per-transaction log
    # (its 3rd field: latency in us; its 4th: the script's number).
    d = tempfile.mkdtemp(prefix=f"c{clients}-", dir=workdir)
    cmd = [PGBENCH, "-n", "-M", "prepared", "-T", str(secs), "-c", str(clients), "-j", str(clients)]
    for t in tables:
        script = os.path.join(workdir, f"update_{t}.sql")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(update_script(t))
        cmd += ["-f", script + ("@1" if len(tables) > 1 else "")]
    cmd += ["-D", f"rows={ROWS}", "-l", "--log-prefix", os.path.join(d, "tx")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 180, cwd=d)
    if p.returncode != 0:
        raise RuntimeError(f"pgbench failed ({p.returncode}): {p.stderr[-2000:]}\n{p.stdout[-2000:]}")
    m = re.search(r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)", p.stdout, re.M)
    if not m:
        raise RuntimeError(f"no tps in pgbench output:\n{p.stdout}")
    tps = float(m.group(1))
    n = re.search(r"number of transactions actually processed: (\d+)", p.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", p.stdout)
    lat = []
    per = [[] for _ in tables]
    for path in glob.glob(os.path.join(d, "tx.*")):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[2].isdigit():
                    ms = int(parts[2]) / 1000.0
                    lat.append(ms)
                    per[int(parts[3])].append(ms)
    lat.sort()
    shutil.rmtree(d, ignore_errors=True)
    out = {
        "tps": tps,
        "xacts": int(n.group(1)) if n else len(lat),
        "failed": int(failed.group(1)) if failed else 0,
        "logged": len(lat),
        "p50_ms": pct(lat, 50, True),
        "p99_ms": pct(lat, 99, True),
        "max_ms": lat[-1] if lat else float("nan"),
    }
    if len(tables) > 1:
        out["per_table"] = {}
        for t, xs in zip(tables, per):
            xs.sort()
            out["per_table"][t] = {
                "n": len(xs),
                "mean_ms": sum(xs) / len(xs) if xs else float("nan"),
                "p50_ms": pct(xs, 50, True),
                "p99_ms": pct(xs, 99, True),
            }
    return out


def watch_runs_between(cur, view, t0, t1):
    cur.execute(
        "SELECT status, duration_ms FROM matviews.runs WHERE "
        + view_filter()
        + " AND trigger = 'watch' AND started_at >= to_timestamp(%(t0)s) AND started_at < to_timestamp(%(t1)s)",
        {"v": view, "t0": t0, "t1": t1},
    )
    rows = cur.fetchall()
    statuses = {}
    for s, _ in rows:
        statuses[s] = statuses.get(s, 0) + 1
    durs = [d for s, d in rows if d is not None]
    return {"n": len(rows), "statuses": statuses, "busy_ms": sum(durs), "median_ms": median(durs)}


def p5(ctl, workdir):
    cur = ctl.cursor()
    info = setup_p5(cur)
    set_mode(cur, "none")
    log(f"P5 warm-up: pgbench {WARMUP_S} s with {max(CLIENTS)} clients, mode none")
    run_pgbench(workdir, max(CLIENTS), WARMUP_S)
    runs = []
    total = REPS * len(CLIENTS) * len(MODES)
    i = 0
    for rep in range(REPS):
        for ci, clients in enumerate(CLIENTS):
            k = (rep * len(CLIENTS) + ci) % len(MODES)
            order = MODES[k:] + MODES[:k]
            for mode in order:
                i += 1
                trig = set_mode(cur, mode)
                cur.execute(f"VACUUM {TABLE}")
                cur.execute("CHECKPOINT")
                wait_idle(cur, VIEW)
                time.sleep(0.5)
                load = os.getloadavg()[0]
                t0 = server_now(cur)
                c0 = cpu_times()
                r = run_pgbench(workdir, clients, SECS)
                c1 = cpu_times()
                t1 = server_now(cur)
                r.update(rep=rep, clients=clients, mode=mode, triggers=trig, load1=load, t0=t0, t1=t1, cpu=cpu_share(c0, c1))
                if mode in WATCH_INTERVAL:
                    r["refreshes"] = watch_runs_between(cur, VIEW, t0, t1)
                extra = ""
                if "refreshes" in r:
                    rf = r["refreshes"]
                    extra = (
                        f", {rf['n']} watch runs {rf['statuses']} busy {rf['busy_ms'] / 1000:.1f} s "
                        f"(median {rf['median_ms']:.0f} ms)"
                    )
                log(
                    f"P5 [{i}/{total}] rep {rep + 1} clients {clients} {mode}: {r['tps']:,.0f} tps, "
                    f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, load {load:.2f}"
                    + (f", cpu busy {r['cpu']['busy']:.0f} % steal {r['cpu']['steal']:.1f} %" if r["cpu"] else "")
                    + extra
                )
                if r["failed"]:
                    note(f"pgbench reported {r['failed']} failed transactions in rep {rep + 1}, {clients} clients, {mode}")
                runs.append(r)
    set_mode(cur, "none")
    wait_idle(cur, VIEW)
    # Every watch run of the P5 view, whatever its time: failures would show here.
    cur.execute(
        f"SELECT status, error->>'message' FROM matviews.runs WHERE {view_filter()} AND trigger = 'watch'",
        {"v": VIEW},
    )
    aw = {}
    for st, msg in cur.fetchall():
        e = aw.setdefault(st, {"n": 0, "errors": []})
        e["n"] += 1
        if msg and msg not in e["errors"]:
            e["errors"].append(msg)
    info["all_watch_runs"] = aw
    info["unwatch"] = dict(UNWATCH_STATS)
    return {"info": info, "runs": runs}


# ----------------------------------------------------------------------------------------------
# A/B inside one run: the P5 modes' costs without the drift between runs


AB_MODES = ("none", "floor", "capture", "watch")
AB_VIEW = "bench_ab_mv"
AB_CAPTURE_VIEW = "bench_ab_capture_mv"  # watched with min_interval 1 hour: the capture alone


def ab_table(mode):
    return f"bench_ab_{mode}"


def ab(ctl, workdir):
    # One table per mode (none, floor, watch), each of ROWS rows; one pgbench run per (rep,
    # clients) picks the table at random for every transaction, so the modes share every
    # moment's CPU, steal and disk. The cost of a mode is its mean latency against none's.
    cur = ctl.cursor()
    modes = [m for m in AB_MODES if m in MODES]
    log(f"A/B setup: tables {', '.join(ab_table(m) for m in modes)} with {ROWS:,} rows each")
    cur.execute(f"SELECT matviews.delete('{AB_VIEW}')")
    for m in modes:
        t = ab_table(m)
        cur.execute(f"DROP TABLE IF EXISTS {t} CASCADE")
        cur.execute(
            f"CREATE TABLE {t} (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL) WITH (autovacuum_enabled = off)"
        )
        cur.execute(f"INSERT INTO {t} SELECT g, g %% 1000, 0 FROM generate_series(1, %s) g", (ROWS,))
        cur.execute(f"VACUUM ANALYZE {t}")
    if "floor" in modes:
        cur.execute(
            "CREATE OR REPLACE FUNCTION bench_noop_trigger() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN RETURN NULL; END$$"
        )
        cur.execute(
            f"CREATE TRIGGER {FLOOR_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {ab_table('floor')} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bench_noop_trigger()"
        )
    if "watch" in modes:
        t = ab_table("watch")
        check_response(
            q1(
                cur,
                "SELECT matviews.create(%s, %s, refresh_strategy => 'concurrent', unique_index_columns => ARRAY['grp'])",
                (AB_VIEW, f"SELECT grp, sum(v) AS total, count(*) AS n FROM public.{t} GROUP BY grp"),
            ),
            f"create {AB_VIEW}",
        )
        watch(cur, AB_VIEW, t, WATCH_INTERVAL["watch"])
        wait_idle(cur, AB_VIEW)
    if "capture" in modes:
        t = ab_table("capture")
        cur.execute(f"SELECT matviews.delete('{AB_CAPTURE_VIEW}')")
        check_response(
            q1(
                cur,
                "SELECT matviews.create(%s, %s, refresh_strategy => 'concurrent', unique_index_columns => ARRAY['grp'])",
                (AB_CAPTURE_VIEW, f"SELECT grp, sum(v) AS total, count(*) AS n FROM public.{t} GROUP BY grp"),
            ),
            f"create {AB_CAPTURE_VIEW}",
        )
        watch(cur, AB_CAPTURE_VIEW, t, WATCH_INTERVAL["capture"])
    tables = [ab_table(m) for m in modes]
    log(f"A/B warm-up: pgbench {WARMUP_S} s with {max(CLIENTS)} clients")
    run_pgbench(workdir, max(CLIENTS), WARMUP_S, tables)
    runs = []
    total = REPS * len(CLIENTS)
    i = 0
    for rep in range(REPS):
        for clients in CLIENTS:
            i += 1
            for t in tables:
                cur.execute(f"VACUUM {t}")
            cur.execute("CHECKPOINT")
            if "watch" in modes:
                wait_idle(cur, AB_VIEW)
            time.sleep(0.5)
            t0 = server_now(cur)
            c0 = cpu_times()
            r = run_pgbench(workdir, clients, SECS, tables)
            c1 = cpu_times()
            t1 = server_now(cur)
            r.update(rep=rep, clients=clients, t0=t0, t1=t1, cpu=cpu_share(c0, c1))
            if "watch" in modes:
                r["refreshes"] = watch_runs_between(cur, AB_VIEW, t0, t1)
            pt = r["per_table"]
            log(
                f"A/B [{i}/{total}] rep {rep + 1} clients {clients}: {r['tps']:,.0f} tps in all; mean latency "
                + ", ".join(f"{m} {pt[ab_table(m)]['mean_ms'] * 1000:.0f} us" for m in modes)
                + (f"; cpu steal {r['cpu']['steal']:.1f} %" if r["cpu"] else "")
                + (f"; {r['refreshes']['n']} watch runs {r['refreshes']['statuses']}" if "refreshes" in r else "")
            )
            runs.append(r)
    if "watch" in modes:
        unwatch(cur, AB_VIEW, ab_table("watch"))
        wait_idle(cur, AB_VIEW)
        cur.execute(f"SELECT matviews.delete('{AB_VIEW}')")
    if "capture" in modes:
        unwatch(cur, AB_CAPTURE_VIEW, ab_table("capture"))
        cur.execute(f"SELECT matviews.delete('{AB_CAPTURE_VIEW}')")
    for m in modes:
        cur.execute(f"DROP TABLE {ab_table(m)} CASCADE")
    return {"modes": modes, "runs": runs}


def summarize_ab(res):
    # Per (clients, mode): the mean latency's excess over none's in the same run (us), and
    # none's mean latency / the mode's: the TPS ratio a closed-loop client would see.
    out = {}
    for r in res["runs"]:
        pt = r["per_table"]
        base = pt[ab_table("none")]["mean_ms"]
        for m in res["modes"]:
            x = pt[ab_table(m)]
            e = out.setdefault((r["clients"], m), {"added_us": [], "ratio": [], "mean_ms": [], "p99_ms": []})
            e["added_us"].append((x["mean_ms"] - base) * 1000)
            e["ratio"].append(base / x["mean_ms"])
            e["mean_ms"].append(x["mean_ms"])
            e["p99_ms"].append(x["p99_ms"])
    return out


def summarize_p5(res):
    runs = res["runs"]
    cell = {}
    for r in runs:
        cell.setdefault((r["clients"], r["mode"]), []).append(r)
    s = {}
    for (c, m), rs in cell.items():
        tps = [r["tps"] for r in rs]
        p99 = [r["p99_ms"] for r in rs]
        s[(c, m)] = {
            "tps": median(tps),
            "tps_min": min(tps),
            "tps_max": max(tps),
            "p99": median(p99),
            "p99_min": min(p99),
            "p99_max": max(p99),
            "p50": median([r["p50_ms"] for r in rs]),
            "n": len(rs),
            "refreshes": [r["refreshes"]["n"] for r in rs if "refreshes" in r],
            "refresh_busy_s": [r["refreshes"]["busy_ms"] / 1000 for r in rs if "refreshes" in r],
            "refresh_median_ms": median([r["refreshes"]["median_ms"] for r in rs if "refreshes" in r and r["refreshes"]["n"]]),
            "refresh_failed": sum(
                n for r in rs if "refreshes" in r for st, n in r["refreshes"]["statuses"].items() if st != "success"
            ),
        }
    # Per repetition, each mode against none of the same repetition and client count (paired:
    # drift between repetitions cancels out).
    paired = {}
    for (c, m), rs in cell.items():
        if m == "none":
            continue
        base = {r["rep"]: r["tps"] for r in cell.get((c, "none"), [])}
        paired[(c, m)] = [r["tps"] / base[r["rep"]] for r in rs if r["rep"] in base]
    return s, paired


# ----------------------------------------------------------------------------------------------
# P7


def setup_p7(cur, strategy):
    table, view = f"p7_t_{strategy}", f"p7_{strategy}_mv"
    cur.execute(f"SELECT matviews.delete('{view}')")
    cur.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL)")
    cur.execute(f"INSERT INTO {table} SELECT g, g %% 1000, 0 FROM generate_series(1, %s) g", (P7_ROWS,))
    cur.execute(f"VACUUM ANALYZE {table}")
    check_response(
        q1(
            cur,
            "SELECT matviews.create(%s, %s, refresh_strategy => %s, unique_index_columns => ARRAY['grp'])",
            (view, f"SELECT grp, sum(v) AS total, count(*) AS n FROM public.{table} GROUP BY grp", strategy),
        ),
        f"create {view}",
    )
    return table, view


def p7_one(ctl, strategy):
    cur = ctl.cursor()
    table, view = setup_p7(cur, strategy)
    log(f"P7 {strategy}: {table} {P7_ROWS:,} rows, {view}; watch with min_interval 0")
    watch(cur, view, table, "0")
    wait_idle(cur, view)
    cur.execute("CHECKPOINT")
    time.sleep(1.0)
    wait_idle(cur, view)
    t_begin = server_now(cur)
    wcon = connect()
    w = wcon.cursor()
    w.execute(
        f"PREPARE upd(int) AS UPDATE {table} SET v = v + 1 WHERE id = $1 "
        "RETURNING extract(epoch FROM clock_timestamp())::float8"
    )
    w.execute("PREPARE now AS SELECT extract(epoch FROM clock_timestamp())::float8")
    rng = random.Random(7)
    commits = []  # (before commit: the UPDATE's clock, after commit: the next statement's clock)
    n = P7_RATE * P7_SECS
    start = time.monotonic()
    late = 0
    for i in range(n):
        due = start + i / P7_RATE
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        elif d < -0.05:
            late += 1
        w.execute("EXECUTE upd(%s)", (rng.randint(1, P7_ROWS),))
        before = w.fetchone()[0]
        w.execute("EXECUTE now")
        after = w.fetchone()[0]
        commits.append((before, after))
    elapsed = time.monotonic() - start
    wcon.close()
    # The last commits' refresh: wait until a watch run started after the last commit has ended.
    last = commits[-1][1]
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        done = q1(
            cur,
            f"SELECT count(*) FROM matviews.runs WHERE {view_filter()} AND trigger = 'watch' "
            "AND started_at > to_timestamp(%(t)s) AND status NOT IN ('queued', 'running')",
            {"v": view, "t": last},
        )
        if done:
            break
        time.sleep(0.1)
    wait_idle(cur, view)
    unwatch(cur, view, table)
    wait_idle(cur, view)
    cur.execute(
        "SELECT status, extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8, "
        f"duration_ms, error->>'message' FROM matviews.runs WHERE {view_filter()} AND trigger = 'watch' "
        "AND started_at >= to_timestamp(%(t)s) ORDER BY started_at",
        {"v": view, "t": t_begin},
    )
    runs = cur.fetchall()
    starts = [r[1] for r in runs]
    ok = [r for r in runs if r[0] == "success"]
    ok_starts = [r[1] for r in ok]
    lat_start, lat_finish, uncovered = [], [], 0
    for before, after in commits:
        j = bisect.bisect_right(starts, after)
        if j >= len(runs):
            uncovered += 1
            continue
        lat_start.append((runs[j][1] - after) * 1000)
        k = bisect.bisect_right(ok_starts, after)
        if k < len(ok):
            lat_finish.append((ok[k][2] - after) * 1000)
    statuses = {}
    for r in runs:
        statuses[r[0]] = statuses.get(r[0], 0) + 1
    errors = sorted({r[4] for r in runs if r[4]})
    if uncovered:
        note(f"P7 {strategy}: {uncovered} of {len(commits)} commits had no watch run started after them")
    if set(statuses) - {"success"}:
        note(f"P7 {strategy}: watch runs {statuses}" + (f"; errors: {errors[:3]}" if errors else ""))
    res = {
        "strategy": strategy,
        "commits": len(commits),
        "rate": len(commits) / elapsed,
        "late": late,
        "commit_window_ms": median([(a - b) * 1000 for b, a in commits]),
        "runs": len(runs),
        "statuses": statuses,
        "errors": errors,
        "run_median_ms": median([r[3] for r in runs if r[3] is not None]),
        "run_p99_ms": pct([r[3] for r in runs if r[3] is not None], 99),
        "commits_per_run": len(commits) / len(runs) if runs else float("nan"),
        "uncovered": uncovered,
        "start_p50": pct(lat_start, 50),
        "start_p99": pct(lat_start, 99),
        "start_max": max(lat_start) if lat_start else float("nan"),
        "finish_p50": pct(lat_finish, 50),
        "finish_p99": pct(lat_finish, 99),
        "finish_max": max(lat_finish) if lat_finish else float("nan"),
        "table_bytes": q1(cur, "SELECT pg_total_relation_size(%s::regclass)", (table,)),
    }
    log(
        f"P7 {strategy}: {res['commits']} commits at {res['rate']:.1f}/s, {res['runs']} watch runs {statuses} "
        f"(median {res['run_median_ms']:.1f} ms); commit->start p50 {res['start_p50']:.1f} p99 {res['start_p99']:.1f} ms, "
        f"commit->finish p50 {res['finish_p50']:.1f} p99 {res['finish_p99']:.1f} ms"
    )
    cur.execute(f"SELECT matviews.delete('{view}')")
    cur.execute(f"DROP TABLE {table}")
    return res


# ----------------------------------------------------------------------------------------------
# Server log


def server_log(cur):
    datadir = q1(cur, "SHOW data_directory")
    if "/data/" not in datadir:
        return None
    path = os.path.join(datadir.split("/data/")[0], "log", "postgresql-15-regress.log")
    if not os.path.exists(path):
        return None
    counts, samples = {}, []
    pat = re.compile(r"\b(ERROR|WARNING|FATAL|PANIC):\s+(.*)")
    with open(path, errors="replace") as f:
        for line in f:
            m = pat.search(line)
            if m:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
                msg = m.group(1) + ": " + m.group(2).strip()
                if msg not in samples and len(samples) < 10:
                    samples.append(msg)
    return {"path": path, "counts": counts, "samples": samples}


# ----------------------------------------------------------------------------------------------
# Report


def verdict(ok):
    return "PASS" if ok else "MISS"


def fmt_ms(x):
    if x is None or x != x:
        return "-"
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 10 else f"{x:.2f} ms"


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
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem": mem,
        "host": platform.node(),
        "load_start": LOAD_START,
    }


def report(env, p5res, abres, p7res, logi):
    lines = []
    add = lines.append
    add("# matviews watch benchmark (P5, P7)")
    add("")
    add(
        f"{env['date']} · git {GIT_REV} · {env['cpus']} CPUs ({env['cpu']}) · {env['mem']} · {env['server']} · "
        f"server options: {SERVER_OPTS or '(pg_virtualenv defaults)'} · load average (1/5/15 min) at start "
        f"{env['load_start']}, at end {env['load_end']} · wall time {env['elapsed_s'] / 60:.1f} min"
    )
    add("")
    add(f"Command: `{env['command']}`")
    add("")
    add("| target | measured | target | measured / target | result |")
    add("| --- | --- | --- | --- | --- |")
    s = paired = None
    if p5res:
        s, paired = summarize_p5(p5res)
        for c in CLIENTS:
            if (c, "watch") in s and (c, "none") in s:
                w, n = s[(c, "watch")], s[(c, "none")]
                ratio = w["tps"] / n["tps"]
                drop = (1 - ratio) * 100
                pr = paired[(c, "watch")]
                lo, hi = min(pr), max(pr)
                inc = " (inconclusive: noise)" if lo < 1 - TARGETS["p5_drop_pct"] / 100 < hi else ""
                add(
                    f"| P5 watch TPS vs none, {c} client{'s' if c > 1 else ''} (median of {w['n']}) | "
                    f"{ratio:.3f} ({drop:+.1f} % drop; {w['tps']:,.0f} vs {n['tps']:,.0f} tps; per rep "
                    f"{lo:.3f} … {hi:.3f}) | ≤ {TARGETS['p5_drop_pct']:g} % drop | "
                    f"{max(drop, 0) / TARGETS['p5_drop_pct']:.2f} | {verdict(drop <= TARGETS['p5_drop_pct'])}{inc} |"
                )
        c1 = CLIENTS[0]
        for c in CLIENTS[1:]:
            if all(k in s for k in ((c, "watch"), (c1, "watch"), (c, "none"), (c1, "none"))):
                sw = s[(c, "watch")]["tps"] / s[(c1, "watch")]["tps"]
                sn = s[(c, "none")]["tps"] / s[(c1, "none")]["tps"]
                rel = sw / sn
                add(
                    f"| P5 scaling {c}/{c1} clients, watch vs none | {sw:.2f}× vs {sn:.2f}× (ratio {rel:.3f}) | "
                    f"the same (ratio ≥ {TARGETS['p5_scaling']:g}) | {rel / TARGETS['p5_scaling']:.2f} | "
                    f"{verdict(rel >= TARGETS['p5_scaling'])} |"
                )
    if abres:
        sab = summarize_ab(abres)
        for c, m in [(c, m) for m in ("capture", "watch") for c in CLIENTS]:
            x = sab.get((c, m))
            if not x:
                continue
            ratio = median(x["ratio"])
            drop = (1 - ratio) * 100
            lo, hi = min(x["ratio"]), max(x["ratio"])
            inc = " (inconclusive: noise)" if lo < 1 - TARGETS["p5_drop_pct"] / 100 < hi else ""
            add(
                f"| P5 A/B in one run: {m} vs none, {c} client{'s' if c > 1 else ''} (median of {len(x['ratio'])}) | "
                f"{ratio:.3f} ({drop:+.1f} %; {median(x['added_us']):+.0f} us per transaction; per rep {lo:.3f} … {hi:.3f}) | "
                f"≤ {TARGETS['p5_drop_pct']:g} % drop | {max(drop, 0) / TARGETS['p5_drop_pct']:.2f} | "
                f"{verdict(drop <= TARGETS['p5_drop_pct'])}{inc} |"
            )
    if p7res:
        for r in p7res:
            add(
                f"| P7 commit → refresh finished, p99, {r['strategy']} (full refresh, {P7_ROWS:,} rows) | "
                f"{fmt_ms(r['finish_p99'])} (p50 {fmt_ms(r['finish_p50'])}) | ≤ {TARGETS['p7_p99_ms']:g} ms "
                f"(incremental only) | {r['finish_p99'] / TARGETS['p7_p99_ms']:.2f} | n/a (incremental not built) |"
            )
    add("")
    if p5res:
        info = p5res["info"]
        add(f"## P5: single-row UPDATEs with pgbench, {ROWS:,}-row table, view `{VIEW}`")
        add("")
        add(
            f"`pgbench -n -M prepared -T {SECS} -c N -j N -l` with `\\set id random(1, :rows)` / "
            f"`UPDATE {TABLE} SET v = v + 1 WHERE id = :id;` on `{TABLE}(id int primary key, grp int, v int)`, "
            f"grp = id % 1000 ({info['table_bytes'] / 2**20:.0f} MB with its index). The view: "
            f"`SELECT grp, sum(v), count(*) FROM {TABLE} GROUP BY grp` (1,000 rows, unique index on grp, "
            f"refresh_strategy concurrent; one refresh {info['refresh_ms']:.0f} ms). {REPS} repetition{'s' if REPS > 1 else ''}; in each, "
            f"for each client count, every mode in turn (the order rotating), each after an untimed "
            f"`VACUUM {TABLE}` and `CHECKPOINT` (autovacuum is off for the table). p99: over every "
            "transaction of the run (pgbench's per-transaction log). Modes: "
            + "; ".join(f"**{m}**: {MODE_TEXT[m]}" for m in MODES)
            + ". The floor is a plpgsql no-op statement trigger (`AFTER INSERT OR UPDATE OR DELETE ... "
            "FOR EACH STATEMENT`, `RETURN NULL`): the cheapest trigger a user could write."
        )
        add("")
        add("| clients | mode | TPS median | TPS min … max | vs none (median) | vs none per rep | p50 | p99 median | p99 min … max | watch runs per run | refresh busy per run |")
        add("| ---: | --- | ---: | --- | ---: | --- | ---: | ---: | --- | --- | --- |")
        for c in CLIENTS:
            for m in MODES:
                x = s.get((c, m))
                if not x:
                    continue
                base = s.get((c, "none"))
                vs = f"{x['tps'] / base['tps']:.3f}" if base else "-"
                pr = paired.get((c, m))
                prs = f"{min(pr):.3f} … {max(pr):.3f}" if pr else "-"
                rf = ", ".join(str(n) for n in x["refreshes"]) if x["refreshes"] else "-"
                busy = ", ".join(f"{b:.1f} s" for b in x["refresh_busy_s"]) if x["refresh_busy_s"] else "-"
                add(
                    f"| {c} | {m} | {x['tps']:,.0f} | {x['tps_min']:,.0f} … {x['tps_max']:,.0f} | {vs} | {prs} | "
                    f"{fmt_ms(x['p50'])} | {fmt_ms(x['p99'])} | {fmt_ms(x['p99_min'])} … {fmt_ms(x['p99_max'])} | {rf} | {busy} |"
                )
        add("")
        add("Scaling (median TPS at N clients / median TPS at 1 client):")
        add("")
        add("| mode | " + " | ".join(f"{c} clients" for c in CLIENTS[1:]) + " |")
        add("| --- |" + " ---: |" * len(CLIENTS[1:]))
        for m in MODES:
            if all((c, m) in s for c in CLIENTS):
                add(
                    f"| {m} | "
                    + " | ".join(f"{s[(c, m)]['tps'] / s[(CLIENTS[0], m)]['tps']:.2f}×" for c in CLIENTS[1:])
                    + " |"
                )
        add("")
        if "floor" in MODES and "watch" in MODES:
            parts = []
            for c in CLIENTS:
                if all((c, k) in s for k in ("none", "floor", "watch")):
                    dn = s[(c, "none")]["tps"]
                    parts.append(
                        f"{c} client{'s' if c > 1 else ''}: floor {(1 - s[(c, 'floor')]['tps'] / dn) * 100:+.1f} %, watch "
                        f"{(1 - s[(c, 'watch')]['tps'] / dn) * 100:+.1f} %"
                        + (f", capture {(1 - s[(c, 'capture')]['tps'] / dn) * 100:+.1f} %" if (c, "capture") in s else "")
                    )
            add("TPS drop against none (median): " + "; ".join(parts) + ".")
            add("")
        cpu_note = (
            f"This machine has {env['cpus']} cores: with {', '.join(str(c) for c in CLIENTS if c > env['cpus'])} "
            "clients the backends, pgbench's own threads and the scheduler's refresh jobs compete for the CPU, "
            "so the scaling columns measure contention (locks, WAL flushes, CPU), not added parallelism."
            if any(c > (env["cpus"] or 1) for c in CLIENTS)
            else ""
        )
        if cpu_note:
            add(cpu_note)
            add("")
        cpus = [r["cpu"] for r in p5res["runs"] if r.get("cpu")]
        if cpus:
            st = [c["steal"] for c in cpus]
            add(
                f"The machine's CPU during the runs (/proc/stat, all processes): busy median "
                f"{median([c['busy'] for c in cpus]):.0f} %, iowait median {median([c['iowait'] for c in cpus]):.1f} %, "
                f"steal (time the hypervisor gave to other guests) median {median(st):.1f} %, max {max(st):.1f} %."
            )
            add("")
        aw = info.get("all_watch_runs") or {}
        add(
            "All watch runs of the view during P5: "
            + (", ".join(f"{st} {v['n']}" + (f" ({'; '.join(v['errors'][:3])})" if v["errors"] else "") for st, v in sorted(aw.items())) or "none")
            + f". unwatch: {info['unwatch']['unwatches']} calls; the matviews_watch trigger was gone by itself "
            f"{info['unwatch']['gone_by_itself']} times"
            + (f" (after at most {max(info['unwatch']['gone_after_s']):.1f} s)" if info["unwatch"]["gone_after_s"] else "")
            + f", dropped by the benchmark after {TRIGGER_GONE_WAIT_S:g} s {info['unwatch']['dropped_by_bench']} times."
        )
        add("")
    if abres:
        sab = summarize_ab(abres)
        modes = abres["modes"]
        add(f"## P5 A/B: the modes side by side in one pgbench run ({ROWS:,} rows per table)")
        add("")
        add(
            "Runs a few seconds apart differ by far more than 3 % on this machine (the hypervisor's steal "
            "time moves from 1 to 30 % within a minute), so the modes are also measured inside the same run: "
            f"one table per mode ({', '.join(f'`{ab_table(m)}`' for m in modes)}, each like `{TABLE}`; "
            f"`{ab_table('floor')}` has the no-op trigger"
            + (f", `{AB_VIEW}` on `{ab_table('watch')}` is watched with min_interval 1 second" if "watch" in modes else "")
            + (f", `{AB_CAPTURE_VIEW}` on `{ab_table('capture')}` with min_interval 1 hour (the capture without refreshes)" if "capture" in modes else "")
            + f") and one pgbench script per table, chosen at random for every transaction (`-f a.sql@1 -f b.sql@1 ...`), "
            f"{REPS} × {SECS} s per client count. Every mode sees the same moments of CPU, steal and disk; its "
            "cost is its mean transaction latency against none's in the same run, and the TPS ratio a "
            "closed-loop client would see is none's mean latency / the mode's. What this leaves out: the "
            "refreshes' CPU is shared by all the tables here, so it is not charged to watch (the interleaved "
            "runs above include it; the `capture` mode there shows the capture without it)."
        )
        add("")
        add("| clients | mode | mean latency (median) | added per transaction vs none, median (min … max) | TPS-equivalent ratio vs none, median (min … max) | p99 (median) |")
        add("| ---: | --- | ---: | --- | --- | ---: |")
        for c in CLIENTS:
            for m in modes:
                x = sab.get((c, m))
                if not x:
                    continue
                add(
                    f"| {c} | {m} | {median(x['mean_ms']) * 1000:.0f} us | "
                    + ("-" if m == "none" else f"{median(x['added_us']):+.1f} us ({min(x['added_us']):+.1f} … {max(x['added_us']):+.1f})")
                    + " | "
                    + ("-" if m == "none" else f"{median(x['ratio']):.3f} ({min(x['ratio']):.3f} … {max(x['ratio']):.3f})")
                    + f" | {fmt_ms(median(x['p99_ms']))} |"
                )
        add("")
        rf = [r["refreshes"] for r in abres["runs"] if "refreshes" in r]
        if rf:
            add(
                f"Watch runs of `{AB_VIEW}` per A/B run: {', '.join(str(x['n']) for x in rf)}; statuses "
                + ", ".join(
                    f"{k} {sum(x['statuses'].get(k, 0) for x in rf)}" for k in sorted({k for x in rf for k in x["statuses"]})
                )
                + "."
            )
            add("")
    if p7res:
        add(f"## P7: commit → watch refresh, {P7_RATE} commits/s for {P7_SECS} s, min_interval 0")
        add("")
        add(
            f"One base table of {P7_ROWS:,} rows per strategy (`id int primary key, grp int, v int`, grp = id % 1000) "
            "and a managed view `SELECT grp, sum(v), count(*) ... GROUP BY grp` (1,000 rows, unique index on grp), "
            "watched with `min_interval => '0'`. A writer (autocommit, one connection) paced at "
            f"{P7_RATE}/s runs `UPDATE ... SET v = v + 1 WHERE id = $1`; its commit time is the server's "
            "`clock_timestamp()` of the statement right after the commit (the commit itself, WAL flush "
            "included, lies in the *commit window* before it). For each commit, the run that includes it is "
            "the first `trigger = 'watch'` run of the view whose `started_at` is after it (finish: the first "
            "successful one); latencies are server clock differences. These are full refreshes: the P7 target "
            "(p99 ≤ 50 ms from commit to change visible) is for incremental refresh, not built yet."
        )
        add("")
        add("| strategy | commits (rate) | commit window | watch runs (status) | commits per run | run duration median / p99 | commit → start p50 / p99 / max | commit → finish p50 / p99 / max | commits with no run after |")
        add("| --- | --- | ---: | --- | ---: | --- | --- | --- | ---: |")
        for r in p7res:
            add(
                f"| {r['strategy']} | {r['commits']:,} ({r['rate']:.1f}/s) | {fmt_ms(r['commit_window_ms'])} | "
                f"{r['runs']} ({', '.join(f'{k} {v}' for k, v in sorted(r['statuses'].items()))}) | {r['commits_per_run']:.1f} | "
                f"{fmt_ms(r['run_median_ms'])} / {fmt_ms(r['run_p99_ms'])} | "
                f"{fmt_ms(r['start_p50'])} / {fmt_ms(r['start_p99'])} / {fmt_ms(r['start_max'])} | "
                f"{fmt_ms(r['finish_p50'])} / {fmt_ms(r['finish_p99'])} / {fmt_ms(r['finish_max'])} | {r['uncovered']} |"
            )
        add("")
    if logi is None:
        add("Server log: not found.")
    else:
        c = logi["counts"]
        add(
            "Server log: "
            + (", ".join(f"{k} {v}" for k, v in sorted(c.items())) if c else "no ERROR, WARNING, FATAL or PANIC lines")
            + (". First distinct messages: " + "; ".join(f"`{m[:200]}`" for m in logi["samples"]) if logi["samples"] else "")
            + "."
        )
        add("")
    if NOTES:
        add("Notes: " + " ".join(n if n.endswith(".") else n + "." for n in NOTES))
        add("")
    if p5res:
        add("<details><summary>Every P5 run</summary>")
        add("")
        add("| rep | clients | mode | TPS | p50 | p99 | max | load avg 1 min before | CPU busy / iowait / steal | watch runs |")
        add("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        for r in p5res["runs"]:
            rf = r.get("refreshes")
            add(
                f"| {r['rep'] + 1} | {r['clients']} | {r['mode']} | {r['tps']:,.0f} | {fmt_ms(r['p50_ms'])} | "
                f"{fmt_ms(r['p99_ms'])} | {fmt_ms(r['max_ms'])} | {r['load1']:.2f} | "
                + (f"{r['cpu']['busy']:.0f} / {r['cpu']['iowait']:.1f} / {r['cpu']['steal']:.1f} % | " if r.get("cpu") else "- | ")
                + (f"{rf['n']} {rf['statuses']}" if rf else "-")
                + " |"
            )
        add("")
        add("</details>")
        add("")
    return "\n".join(lines) + "\n"


def plot(p5res):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("plot skipped: python3-matplotlib is not installed")
        return []
    s, _ = summarize_p5(p5res)
    path = os.path.join(RESULTS, "watch_tps.png")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    offs = {m: (i - (len(MODES) - 1) / 2) * 0.06 for i, m in enumerate(MODES)}
    for m in MODES:
        cs = [c for c in CLIENTS if (c, m) in s]
        if not cs:
            continue
        xs = [c * (1 + offs[m]) for c in cs]
        y = [s[(c, m)]["tps"] for c in cs]
        err = [[s[(c, m)]["tps"] - s[(c, m)]["tps_min"] for c in cs], [s[(c, m)]["tps_max"] - s[(c, m)]["tps"] for c in cs]]
        ax.errorbar(xs, y, yerr=err, marker="o", capsize=4, label=MODE_LABEL[m])
        y2 = [s[(c, m)]["p99"] for c in cs]
        err2 = [[s[(c, m)]["p99"] - s[(c, m)]["p99_min"] for c in cs], [s[(c, m)]["p99_max"] - s[(c, m)]["p99"] for c in cs]]
        ax2.errorbar(xs, y2, yerr=err2, marker="o", capsize=4, label=MODE_LABEL[m])
    for a in (ax, ax2):
        a.set_xscale("log", base=2)
        a.set_xticks(CLIENTS)
        a.set_xticklabels([str(c) for c in CLIENTS])
        a.set_xlabel("pgbench clients (-c N -j N)")
        a.grid(True, alpha=0.3)
    ax.set_ylabel("TPS (median, bars: min … max)")
    ax.set_ylim(bottom=0)
    ax.set_title("throughput", fontsize=10)
    ax2.set_ylabel("p99 latency, ms (median, bars: min … max)")
    ax2.set_ylim(bottom=0)
    ax2.set_title("p99 transaction latency", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Single-row UPDATEs on a {ROWS:,}-row table read by a watched GROUP BY view "
        f"({REPS}×{SECS} s per point, {os.cpu_count()} CPUs)",
        fontsize=11,
    )
    fig.savefig(path, dpi=110)
    return [path]


# ----------------------------------------------------------------------------------------------


def on_alarm(signum, frame):
    raise TimeoutError(f"the benchmark ran longer than BENCH_TIMEOUT={TIMEOUT_S} s")


def main():
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT_S)
    started = time.monotonic()
    os.makedirs(RESULTS, exist_ok=True)
    env = environment()
    env["command"] = os.environ.get(
        "BENCH_COMMAND",
        "bash bench/watch_bench.sh"
        f" --rows {ROWS} --reps {REPS} --secs {SECS} --clients {','.join(map(str, CLIENTS))} --modes {','.join(MODES)}"
        f" --p7-secs {P7_SECS} --p7-rows {P7_ROWS} --p7-rate {P7_RATE} --only {','.join(PARTS)}"
        + (" --plot" if PLOT else ""),
    )
    ctl = connect()
    cur = ctl.cursor()
    env["server"] = "PostgreSQL " + q1(cur, "SHOW server_version").split()[0]
    for name in ("shared_buffers", "fsync", "synchronous_commit", "max_wal_size"):
        env["server"] += f", {name}={q1(cur, f'SHOW {name}')}"
    cur.execute("CREATE EXTENSION IF NOT EXISTS matviews")
    has_watch = bool(q1(cur, "SELECT count(*) FROM pg_proc WHERE proname = 'watch' AND pronamespace = 'matviews'::regnamespace"))
    needs_watch = "p7" in PARTS or any(m in WATCH_INTERVAL for m in MODES)
    if needs_watch and not has_watch:
        print(
            "watch_bench: the installed matviews has no matviews.watch; only "
            "`--only p5 --modes none,floor` runs without it",
            file=sys.stderr,
        )
        sys.exit(1)
    workdir = tempfile.mkdtemp(prefix="watch-bench-")
    try:
        p5res = p5(ctl, workdir) if "p5" in PARTS else None
        abres = ab(ctl, workdir) if "ab" in PARTS else None
        p7res = [p7_one(ctl, s) for s in P7_STRATEGIES] if "p7" in PARTS else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    logi = server_log(cur)
    env["elapsed_s"] = time.monotonic() - started
    env["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
    text = report(env, p5res, abres, p7res, logi)
    extra = plot(p5res) if PLOT and p5res else []
    signal.alarm(0)
    with open(os.path.join(RESULTS, "watch_latest.md"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "watch_latest.json"), "w") as f:
        json.dump({"env": env, "p5": p5res, "ab": abres, "p7": p7res, "server_log": logi, "notes": NOTES}, f, indent=1, default=str)
    print(text)
    print(
        f"written: {os.path.join(RESULTS, 'watch_latest.md')}, {os.path.join(RESULTS, 'watch_latest.json')}"
        + "".join(f", {p}" for p in extra)
    )


if __name__ == "__main__":
    main()
