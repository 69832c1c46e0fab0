#!/usr/bin/python3
"""Scheduler benchmark for P4: commit->start and due->start latency, idle CPU.

Run through bench/scheduler_bench.sh, which starts a throw-away cluster (pg_virtualenv) with
matviews (and pg_cron, when installed) preloaded and track_commit_timestamp = on, and runs this
script inside it with the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD) set.

Phases (all timestamps are the server's clock, except where noted):
  1. commit->start: BEGIN; matviews.enqueue('tiny_mv'); COMMIT; matviews.wait(run).
     latency = runs.started_at (the job's claim) - pg_xact_commit_timestamp(enqueuing xid).
     With a short random pause between iterations (idle scheduler), then back-to-back.
  2. due->start: interval schedule '1 second' on interval_mv.
     latency = started_at - (previous run's finished_at + 1 s), cross-checked with runs.run_at.
     Cron '* * * * *' ticks of a matviews view and of a pg_cron job run alongside phases 1-2:
     latency = start - the minute boundary.
  3. breakdown: a few more enqueues and interval runs with strace attached to the scheduler (its
     wake-ups, and the signal of RegisterDynamicBackgroundWorker) and to the postmaster (the
     fork of each job), to split the latency into stages.
  4. idle CPU: CPU time (/proc/<pid>/schedstat, and utime+stime) of the matviews launcher and
     scheduler, and of the pg_cron launcher, with no schedules, then with N schedules each
     (cron at a time of day that is not due during the measurement).

Settings come from BENCH_* environment variables (see CONFIG below). Output: a Markdown report
on stdout and in BENCH_OUT.
"""
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import psycopg2


def env_int(name, default):
    """An integer setting from the environment."""
    return int(os.environ.get(name, default))


CONFIG = {
    "commit_n": env_int("BENCH_COMMIT_N", 200),  # enqueues with a pause between them
    "b2b_n": env_int("BENCH_B2B_N", 50),  # enqueues right after the previous run ended
    "due_seconds": env_int("BENCH_DUE_SECONDS", 60),  # interval '1 second' phase
    "cron_ticks": env_int("BENCH_CRON_TICKS", 2),  # minute ticks to wait for (bounded)
    "breakdown_n": env_int("BENCH_BREAKDOWN_N", 30),  # enqueues with strace attached
    "breakdown_due_seconds": env_int("BENCH_BREAKDOWN_DUE_SECONDS", 12),
    "idle_views": env_int("BENCH_IDLE_VIEWS", 1000),
    "idle_baseline_seconds": env_int("BENCH_IDLE_BASELINE_SECONDS", 15),
    "idle_seconds": env_int("BENCH_IDLE_SECONDS", 60),
}
OUT = os.environ.get("BENCH_OUT", "bench/results/scheduler.md")
TARGET_MS = 100.0
TARGET_CPU = 1.0
T_START = time.time()


def log(msg):
    """Progress on stderr, with the elapsed time."""
    print(f"[{time.time() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Database helpers

conn = psycopg2.connect("", application_name="scheduler_bench")
conn.autocommit = True
tx = psycopg2.connect("", application_name="scheduler_bench_tx")  # explicit transactions


def q(sql, args=None):
    """All rows of a statement on the autocommit connection."""
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchall() if c.description else []


def q1(sql, args=None):
    """The first column of the first row."""
    rows = q(sql, args)
    return rows[0][0] if rows else None


def wait_for(what, predicate, timeout, step=0.1):
    """Polls predicate() until true; raises after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}")


def backend_pids(backend_type):
    """Pids of processes of a backend_type in pg_stat_activity."""
    return [r[0] for r in q("SELECT pid FROM pg_stat_activity WHERE backend_type = %s ORDER BY pid",
                            (backend_type,))]


# ---------------------------------------------------------------------------------------------
# Statistics


def pct(values, p):
    """The p-th percentile with linear interpolation (numpy's default)."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values):
    """n, p50, p90, p99, max of a list of milliseconds."""
    return {"n": len(values), "p50": pct(values, 50), "p90": pct(values, 90), "p99": pct(values, 99),
            "max": max(values) if values else None, "min": min(values) if values else None}


def fmt(v, digits=1):
    """A number for the tables, or a dash."""
    return "–" if v is None else f"{v:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Setup

log(f"config {json.dumps(CONFIG)}")
server_version = q1("SHOW server_version")
assert q1("SHOW track_commit_timestamp") == "on", "track_commit_timestamp must be on"
q("CREATE EXTENSION IF NOT EXISTS matviews")
have_cron = q1("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_cron'") > 0 and \
    "pg_cron" in q1("SHOW shared_preload_libraries")
cron_version = None
if have_cron:
    q("CREATE EXTENSION IF NOT EXISTS pg_cron")
    cron_version = q1("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
    cron_bgw = q1("SHOW cron.use_background_workers")
max_workers = q1("SHOW matviews.max_workers")
naptime = q1("SHOW matviews.scheduler_naptime")
wait_for("the matviews scheduler", lambda: backend_pids("matviews scheduler"), 30)
sched_pid = backend_pids("matviews scheduler")[0]
postmaster_pid = int(open(f"/proc/{sched_pid}/stat").read().rsplit(")", 1)[1].split()[1])
log(f"PostgreSQL {server_version}, matviews scheduler pid {sched_pid}, pg_cron {cron_version}")

for view in ("tiny_mv", "interval_mv", "cron_mv"):
    r = q1("SELECT matviews.create(%s, 'SELECT 1 AS x')", (view,))
    assert r["status"] in ("created", "skipped"), r
# The cron ticks of both tools run alongside phases 1-2 (one view, one job).
cron_phase_start = q1("SELECT clock_timestamp()")
r = q1("SELECT matviews.schedule('cron_mv', '* * * * *')")
assert r["status"] == "updated", r
cron_jobid = None
if have_cron:
    # The job's first statement records when it runs: the moment comparable to matviews'
    # started_at (its job's first statement, the claim). job_run_details.start_time is earlier,
    # right after the worker is forked, before it connects.
    q("CREATE TABLE pgcron_ticks (t timestamptz)")
    cron_jobid = q1("SELECT cron.schedule('bench_tick', '* * * * *', "
                    "'INSERT INTO public.pgcron_ticks VALUES (clock_timestamp())')")


# ---------------------------------------------------------------------------------------------
# Phase 1: commit -> start


def enqueue_and_wait(view):
    """Enqueue in one transaction, commit, wait for the run; (run_id, xid, client commit time)."""
    with tx.cursor() as c:
        c.execute("SELECT matviews.enqueue(%s), pg_current_xact_id()::text", (view,))
        resp, xid = c.fetchone()
    tx.commit()
    t_client = time.time()
    if resp.get("status") != "queued":
        raise RuntimeError(f"enqueue failed: {resp}")
    run_id = resp["run_id"]
    out = q1("SELECT matviews.wait(%s, '30 seconds')", (run_id,))
    if out.get("status") != "success":
        raise RuntimeError(f"run {run_id} ended {out}")
    return run_id, xid, t_client


def commit_to_start(samples):
    """Per run: commit ts -> started_at, client COMMIT return -> started_at, run duration (ms)."""
    ids = [s[0] for s in samples]
    xids = [s[1] for s in samples]
    tcl = [s[2] for s in samples]
    rows = q("""
        SELECT x.run_id,
               extract(epoch FROM r.started_at - pg_xact_commit_timestamp(x.xid::xid)) * 1000,
               (extract(epoch FROM r.started_at)::float8 - x.t_client) * 1000,
               extract(epoch FROM r.finished_at - r.started_at) * 1000,
               extract(epoch FROM pg_xact_commit_timestamp(x.xid::xid))::float8,
               extract(epoch FROM r.started_at)::float8
        FROM unnest(%s::bigint[], %s::text[], %s::float8[]) AS x(run_id, xid, t_client)
        JOIN matviews.runs r ON r.id = x.run_id ORDER BY x.run_id""", (ids, xids, tcl))
    return [{"run_id": r[0], "ms": float(r[1]), "client_ms": float(r[2]), "run_ms": float(r[3]),
             "commit_ts": r[4], "started": r[5]} for r in rows]


log("phase 1: commit->start warm-up")
for _ in range(5):
    enqueue_and_wait("tiny_mv")
    time.sleep(0.05)
log(f"phase 1: commit->start, {CONFIG['commit_n']} enqueues with a 20-120 ms pause")
rng = random.Random(42)
samples = []
for _ in range(CONFIG["commit_n"]):
    time.sleep(rng.uniform(0.02, 0.12))
    samples.append(enqueue_and_wait("tiny_mv"))
commit_rows = commit_to_start(samples)
log(f"phase 1: back-to-back, {CONFIG['b2b_n']} enqueues")
samples = [enqueue_and_wait("tiny_mv") for _ in range(CONFIG["b2b_n"])]
b2b_rows = commit_to_start(samples)

# ---------------------------------------------------------------------------------------------
# Phase 2: due -> start (interval '1 second'), with the cron ticks running alongside


def interval_rows(since):
    """Scheduled runs of interval_mv since a time: due = previous finished_at + 1 s."""
    rows = q("""
        WITH s AS (
            SELECT id, run_at, started_at, finished_at, status,
                   lag(finished_at) OVER (ORDER BY id) AS prev_finished
            FROM matviews.runs
            WHERE view = 'public.interval_mv' AND trigger = 'schedule' AND started_at >= %s)
        SELECT id, extract(epoch FROM started_at - (prev_finished + interval '1 second')) * 1000,
               extract(epoch FROM started_at - run_at) * 1000,
               extract(epoch FROM prev_finished + interval '1 second')::float8,
               extract(epoch FROM started_at)::float8, status
        FROM s WHERE prev_finished IS NOT NULL ORDER BY id""", (since,))
    return [{"run_id": r[0], "ms": float(r[1]), "run_at_ms": float(r[2]), "due": r[3],
             "started": r[4], "status": r[5]} for r in rows]


def cron_ticks_seen():
    """Minute ticks started so far by matviews (cron_mv) and by pg_cron (bench_tick)."""
    mv = q1("SELECT count(*) FROM matviews.runs WHERE view = 'public.cron_mv' "
            "AND trigger = 'schedule' AND started_at IS NOT NULL")
    pc = q1("SELECT count(*) FROM cron.job_run_details WHERE jobid = %s AND start_time IS NOT NULL",
            (cron_jobid,)) if have_cron else mv
    return min(mv, pc)


def stop_schedule(view):
    """Unschedules a view and waits until none of its runs is queued or running."""
    q1("SELECT matviews.unschedule(%s)", (view,))
    wait_for(f"{view} to be idle", lambda: q1(
        "SELECT count(*) FROM matviews.runs WHERE view = %s AND status IN ('queued', 'running')",
        (f"public.{view}",)) == 0, 30)


log(f"phase 2: due->start, interval '1 second' for >= {CONFIG['due_seconds']} s "
    f"(and until {CONFIG['cron_ticks']} cron ticks)")
due_since = q1("SELECT clock_timestamp()")
r = q1("SELECT matviews.schedule('interval_mv', '1 second')")
assert r["status"] == "updated", r
t_due = time.time()
time.sleep(CONFIG["due_seconds"])
wait_deadline = t_due + CONFIG["due_seconds"] + 65 * max(1, CONFIG["cron_ticks"] - 1)
while cron_ticks_seen() < CONFIG["cron_ticks"] and time.time() < wait_deadline:
    time.sleep(0.5)
time.sleep(1.0)  # let a tick's runs finish
stop_schedule("interval_mv")
due_rows = interval_rows(due_since)

stop_schedule("cron_mv")
cron_mv_rows = q("""
    SELECT extract(epoch FROM started_at - run_at) * 1000,
           extract(epoch FROM started_at - date_trunc('minute', started_at)) * 1000, status
    FROM matviews.runs WHERE view = 'public.cron_mv' AND trigger = 'schedule' ORDER BY id""")
cron_pg_rows = []
if have_cron:
    q("SELECT cron.unschedule('bench_tick')")
    cron_pg_rows = q("""
        SELECT extract(epoch FROM d.start_time - date_trunc('minute', d.start_time)) * 1000,
               extract(epoch FROM t.t - date_trunc('minute', d.start_time)) * 1000, d.status
        FROM cron.job_run_details d
        LEFT JOIN pgcron_ticks t ON date_trunc('minute', t.t) = date_trunc('minute', d.start_time)
        WHERE d.jobid = %s ORDER BY d.runid""", (cron_jobid,))
log(f"cron ticks: matviews {len(cron_mv_rows)}, pg_cron {len(cron_pg_rows)}")

# ---------------------------------------------------------------------------------------------
# Phase 3: breakdown (strace of the scheduler and of the postmaster)

breakdown = None
if CONFIG["breakdown_n"] > 0 and shutil.which("strace"):
    log(f"phase 3: breakdown ({CONFIG['breakdown_n']} enqueues, "
        f"{CONFIG['breakdown_due_seconds']} s of interval runs) with strace attached")
    # Scheduler: epoll_wait returns (wake-ups), kill(postmaster, SIGUSR1) (the signal of
    # RegisterDynamicBackgroundWorker). Postmaster: clone (the fork of the job; its child pid is
    # the job's pid, runs.pid). One strace per process, so that no line is split.
    traces = {}
    for pid in (sched_pid, postmaster_pid):
        out = f"/tmp/scheduler_bench_strace.{os.getpid()}.{pid}"
        traces[pid] = (out, subprocess.Popen(
            ["strace", "-q", "-ttt", "-T", "-e", "trace=epoll_wait,kill,clone,clone3",
             "-p", str(pid), "-o", out], stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    bd_samples = []
    for _ in range(CONFIG["breakdown_n"]):
        time.sleep(rng.uniform(0.02, 0.12))
        bd_samples.append(enqueue_and_wait("tiny_mv"))
    bd_since = q1("SELECT clock_timestamp()")
    q1("SELECT matviews.schedule('interval_mv', '1 second')")
    time.sleep(CONFIG["breakdown_due_seconds"])
    stop_schedule("interval_mv")
    for out, proc in traces.values():
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    bd_commit = commit_to_start(bd_samples)
    bd_due = interval_rows(bd_since)
    job_pid = dict(q("SELECT id, pid FROM matviews.runs WHERE id = ANY(%s)",
                     ([r["run_id"] for r in bd_commit + bd_due],)))

    wakes, signals, forks = [], [], {}
    for pid, (out, _) in traces.items():
        for line in open(out):
            m = re.match(r"^(\d+\.\d+) (\w+)\((.*)\) += (-?\d+).* <(\d+\.\d+)>$", line)
            if not m:
                continue
            t, call, args, ret, dur = float(m.group(1)), m.group(2), m.group(3), \
                int(m.group(4)), float(m.group(5))
            if pid == sched_pid and call == "epoll_wait":
                wakes.append(t + dur)
            elif pid == sched_pid and call == "kill" and args.startswith(f"{postmaster_pid}, SIGUSR1"):
                signals.append(t)
            elif pid == postmaster_pid and call.startswith("clone") and ret > 0:
                forks[ret] = t + dur
        os.unlink(out)

    def stages(run_id, trigger, started):
        """Splits trigger -> started_at into stages (ms), or None when a mark is missing."""
        fork = forks.get(job_pid.get(run_id))
        if fork is None:
            return None
        sig = max((s for s in signals if s <= fork), default=None)
        wake = max((w for w in wakes if w <= sig), default=None) if sig else None
        if sig is None or wake is None or sig < trigger:
            return None
        wake = max(wake, trigger)  # already awake when the trigger came
        return {"wake": (wake - trigger) * 1000, "sched": (sig - wake) * 1000,
                "pm": (fork - sig) * 1000, "job": (started - fork) * 1000,
                "total": (started - trigger) * 1000}

    bd = {"commit": [], "due": []}
    for r in bd_commit:
        s = stages(r["run_id"], r["commit_ts"], r["started"])
        if s:
            bd["commit"].append(s)
    for r in bd_due:
        s = stages(r["run_id"], r["due"], r["started"])
        if s:
            bd["due"].append(s)
    breakdown = {"bd": bd, "commit_n": len(bd_commit), "due_n": len(bd_due)}
    log(f"breakdown: {len(bd['commit'])} commit and {len(bd['due'])} due samples split")

# ---------------------------------------------------------------------------------------------
# Phase 4: idle CPU


def proc_sample(pid):
    """CPU ns (schedstat), utime+stime ticks, voluntary context switches of a process."""
    try:
        ns = int(open(f"/proc/{pid}/schedstat").read().split()[0])
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        vol = 0
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("voluntary_ctxt_switches"):
                vol = int(line.split()[1])
        return {"ns": ns, "ticks": ticks, "vol": vol, "t": time.time()}
    except (FileNotFoundError, ProcessLookupError):
        return None


def measure_idle(seconds):
    """CPU % of a core and wake-ups/s per process over a quiet window."""
    procs = {"matviews launcher": backend_pids("matviews launcher"),
             "matviews scheduler": [p for p in backend_pids("matviews scheduler")]}
    if have_cron:
        procs["pg_cron launcher"] = backend_pids("pg_cron launcher")
    since = q1("SELECT clock_timestamp()")
    pids_all = [pid for pids in procs.values() for pid in pids]
    series = [{pid: proc_sample(pid) for pid in pids_all}]  # one sample per second
    t_end = series[0][pids_all[0]]["t"] + seconds
    while True:
        nap = min(1.0, t_end - time.time())
        if nap <= 0:
            break
        time.sleep(nap)
        series.append({pid: proc_sample(pid) for pid in pids_all})
    t0, t1 = series[0], series[-1]
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pids in procs.items():
        ns = ticks = vol = 0
        wall = seconds
        for pid in pids:
            a, b = t0.get(pid), t1.get(pid)
            if a is None or b is None:
                raise RuntimeError(f"{name} pid {pid} ended during the idle measurement")
            ns += b["ns"] - a["ns"]
            ticks += b["ticks"] - a["ticks"]
            vol += b["vol"] - a["vol"]
            wall = b["t"] - a["t"]
        peak = max((sum(series[i + 1][p]["ns"] - series[i][p]["ns"] for p in pids) / 1e6
                    for i in range(len(series) - 1)), default=0.0)
        out[name] = {"pids": pids, "cpu_pct": ns / 1e9 / wall * 100,
                     "cpu_pct_ticks": ticks / hz / wall * 100, "wakeups_s": vol / wall,
                     "peak_ms_per_s": peak}
    mv_runs = q1("SELECT count(*) FROM matviews.runs WHERE started_at >= %s", (since,))
    cron_runs = q1("SELECT count(*) FROM cron.job_run_details WHERE start_time >= %s",
                   (since,)) if have_cron else 0
    return {"procs": out, "mv_runs": mv_runs, "cron_runs": cron_runs, "seconds": seconds}


idle_base = None
if CONFIG["idle_baseline_seconds"] > 0:
    log(f"phase 4: idle CPU with no schedules, {CONFIG['idle_baseline_seconds']} s")
    time.sleep(2)
    idle_base = measure_idle(CONFIG["idle_baseline_seconds"])

n_views = CONFIG["idle_views"]
now_utc = datetime.datetime.now(datetime.timezone.utc)
idle_cron = f"{now_utc.minute} {(now_utc.hour + 12) % 24} * * *"  # 12 hours away
log(f"phase 4: creating {n_views} views scheduled '{idle_cron}'"
    + (f" and {n_views} pg_cron jobs" if have_cron else ""))
t0 = time.time()
for start in range(1, n_views + 1, 100):
    end = min(start + 99, n_views)
    with tx.cursor() as c:
        c.execute("""SELECT count(*) FROM generate_series(%s, %s) g,
                     matviews.create('idle_mv_' || g, 'SELECT 1 AS x', schedule => %s) AS r
                     WHERE r->>'status' = 'created'""", (start, end, idle_cron))
        assert c.fetchone()[0] == end - start + 1
    tx.commit()
create_s = time.time() - t0
if have_cron:
    q("SELECT count(cron.schedule('idle_' || g, %s, 'SELECT 1')) FROM generate_series(1, %s) g",
      (idle_cron, n_views))
wait_for("the scheduler to load the schedules", lambda: q1(
    "SELECT count(*) FROM matviews.definitions WHERE schedule IS NOT NULL "
    "AND next_run_at IS NOT NULL") >= n_views, 60, 0.5)
next_min = q1("SELECT min(next_run_at) - now() FROM matviews.definitions "
              "WHERE schedule IS NOT NULL")
log(f"created in {create_s:.1f} s; next run in {next_min}; settling 5 s")
time.sleep(5)
log(f"phase 4: idle CPU with {n_views} schedules, {CONFIG['idle_seconds']} s")
idle = measure_idle(CONFIG["idle_seconds"])

# ---------------------------------------------------------------------------------------------
# Report

loadavg = open("/proc/loadavg").read().split()[:3]
cpu_model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                  if ln.startswith("model name")), platform.processor())
elapsed = time.time() - T_START


def verdict(value, target):
    return "–" if value is None else ("PASS" if value <= target else "MISS")


c_ms = summary([r["ms"] for r in commit_rows])
c_client = summary([r["client_ms"] for r in commit_rows])
b_ms = summary([r["ms"] for r in b2b_rows])
d_ms = summary([r["ms"] for r in due_rows])
d_runat = summary([r["run_at_ms"] for r in due_rows])
cm_ms = summary([float(r[0]) for r in cron_mv_rows if r[2] == "success"])
cp_ms = summary([float(r[0]) for r in cron_pg_rows if r[2] == "succeeded"])
cp_sql_ms = summary([float(r[1]) for r in cron_pg_rows if r[2] == "succeeded" and r[1] is not None])
run_ms = summary([r["run_ms"] for r in commit_rows])
mv_idle = idle["procs"]["matviews launcher"]["cpu_pct"] + idle["procs"]["matviews scheduler"]["cpu_pct"]
mv_idle_ticks = (idle["procs"]["matviews launcher"]["cpu_pct_ticks"]
                 + idle["procs"]["matviews scheduler"]["cpu_pct_ticks"])

lines = []
w = lines.append
w("# Scheduler benchmark (P4)\n")
w(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
  f"machine: {os.cpu_count()} cores ({cpu_model}), load average at the end {' '.join(loadavg)}")
w(f"- PostgreSQL {server_version}; matviews {os.environ.get('BENCH_GIT_REV', '?')}, "
  f"max_workers {max_workers}, scheduler_naptime {naptime}; "
  + (f"pg_cron {cron_version} (cron.use_background_workers = {cron_bgw})" if have_cron
     else "pg_cron not installed"))
w(f"- cluster: pg_virtualenv (fsync {q1('SHOW fsync')}, synchronous_commit "
  f"{q1('SHOW synchronous_commit')}), track_commit_timestamp on; benchmark took {elapsed:.0f} s\n")
w("| metric | n | p50 | p90 | p99 | max | target | result |")
w("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")


def row(name, s, target=None, unit=" ms"):
    w(f"| {name} | {s['n']} | {fmt(s['p50'])}{unit} | {fmt(s['p90'])}{unit} | {fmt(s['p99'])}{unit} "
      f"| {fmt(s['max'])}{unit} | {target or ''} | "
      f"{verdict(s['p99'], TARGET_MS) if target else ''} |")


row("commit→start, `enqueue` (20–120 ms apart)", c_ms, "p99 ≤ 100 ms")
row("due→start, interval `'1 second'`", d_ms, "p99 ≤ 100 ms")
row("commit→start, no pause (next enqueue as soon as wait() returns)", b_ms)
row("(commit returned to the client→start)", c_client)
row("(due→start by runs.run_at, cross-check)", d_runat)
row("due→start, cron `* * * * *`, matviews (started_at: its job's first statement)", cm_ms)
if have_cron:
    row("due→start, cron `* * * * *`, pg_cron (its job's first statement)", cp_sql_ms)
    row("(due→start, pg_cron, job_run_details.start_time: at the fork, before connecting)", cp_ms)
row("(job run time, started_at→finished_at, tiny view)", run_ms)
w("")
w(f"Idle CPU over {idle['seconds']} s, % of one core (from /proc/<pid>/schedstat; "
  f"utime+stime in brackets), with {n_views} schedules each "
  f"(cron `{idle_cron}`, not due during the measurement), and with none"
  + (f" ({idle_base['seconds']} s)" if idle_base else "") + ":\n")
w(f"| process | CPU % with {n_views} | busiest second | wake-ups/s | CPU % with none | wake-ups/s "
  f"| target | result |")
w("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
for name, p in idle["procs"].items():
    b = idle_base["procs"].get(name) if idle_base else None
    w(f"| {name} | {p['cpu_pct']:.3f} ({p['cpu_pct_ticks']:.2f}) | {p['peak_ms_per_s']:.1f} ms "
      f"| {p['wakeups_s']:.1f} | "
      + (f"{b['cpu_pct']:.3f} ({b['cpu_pct_ticks']:.2f}) | {b['wakeups_s']:.1f}" if b else "– | –")
      + " | | |")
w(f"| **matviews total (launcher + scheduler)** | **{mv_idle:.3f}** ({mv_idle_ticks:.2f}) | | | "
  + (f"{idle_base['procs']['matviews launcher']['cpu_pct'] + idle_base['procs']['matviews scheduler']['cpu_pct']:.3f}"
     if idle_base else "–")
  + f" | | ≤ {TARGET_CPU:g} % | {'PASS' if mv_idle <= TARGET_CPU else 'MISS'} |")
w("")
w(f"Runs started during the idle window: matviews {idle['mv_runs']}, pg_cron {idle['cron_runs']}. "
  f"Creating the {n_views} scheduled views took {create_s:.1f} s.")
if breakdown:
    w("")
    bd = breakdown["bd"]
    w(f"Where the time goes (ms), from a separate run of {breakdown['commit_n']} enqueues and "
      f"{breakdown['due_n']} interval runs with strace attached to the scheduler and the "
      f"postmaster (which slows both a little):\n")
    cols = [("wake", "trigger (commit or due time) → scheduler wakes (latch or timer)"),
            ("sched", "scheduler wakes → RegisterDynamicBackgroundWorker (its transactions)"),
            ("pm", "→ postmaster forks the job"),
            ("job", "fork → job's claim, started_at (backend start, connect, claim)"),
            ("total", "total")]
    w("| stage | commit→start p50 | p99 | due→start p50 | p99 |")
    w("| --- | ---: | ---: | ---: | ---: |")
    for key, label in cols:
        a = [s[key] for s in bd["commit"]]
        b = [s[key] for s in bd["due"]]
        w(f"| {label} | {fmt(pct(a, 50))} | {fmt(pct(a, 99))} | {fmt(pct(b, 50))} | "
          f"{fmt(pct(b, 99))} |")
    w(f"\n(n = {len(bd['commit'])} and {len(bd['due'])}.)")
report = "\n".join(lines) + "\n"
print(report)
os.makedirs(os.path.dirname(OUT) or ".", exist_ok=True)
with open(OUT, "w") as f:
    f.write(report)
with open(os.path.splitext(OUT)[0] + ".json", "w") as f:
    json.dump({"config": CONFIG, "commit": commit_rows, "b2b": b2b_rows, "due": due_rows,
               "cron_mv": [[float(x) if x is not None and not isinstance(x, str) else x for x in r]
                           for r in cron_mv_rows],
               "cron_pg": [[float(x) if x is not None and not isinstance(x, str) else x for x in r]
                           for r in cron_pg_rows],
               "idle": idle, "idle_baseline": idle_base, "breakdown": breakdown}, f, default=str)
log(f"wrote {OUT}")
