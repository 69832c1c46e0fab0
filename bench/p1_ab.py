"""P1 before and after in one run (driven by bench/p1_ab.sh).

Reads the clusters file (lines "name socket-directory port"), one cluster per build, the first
being the installed build. In each cluster it creates a 10-row managed view, then runs rounds: in
each round, for every build in a shuffled order, one raw REFRESH MATERIALIZED VIEW and one
matviews.refresh(regular) of that view (their order alternating), each its own autocommit
statement timed from the client. The added cost of a build is the median of its matviews calls
minus the median of its raw calls; the difference between builds gets a bootstrap interval.
"""

import json
import os
import random
import statistics
import subprocess
import sys
import time

import psycopg2

ITERS = int(os.environ.get("BENCH_ITERS", "400"))
WARMUP = 30
RAW = "REFRESH MATERIALIZED VIEW p1_tiny"
MV = "SELECT matviews.refresh('p1_tiny', strategy => 'regular', row_count_strategy => 'none')"


def log(msg):
    print(f"p1_ab: {msg}", file=sys.stderr, flush=True)


def timed(cur, sql):
    t0 = time.perf_counter()
    cur.execute(sql)
    row = cur.fetchone() if cur.description else None
    return (time.perf_counter() - t0) * 1000.0, (row[0] if row else None)


def check(resp):
    if isinstance(resp, str):
        resp = json.loads(resp)
    if resp.get("status") != "updated":
        raise RuntimeError(f"matviews.refresh: {json.dumps(resp)[:1000]}")


def bootstrap(a_mv, a_raw, b_mv, b_raw, n=2000):
    # 95 % interval of added(a) - added(b), each sample resampled independently (fixed seed).
    rng = random.Random(20261203)

    def med(xs):
        return statistics.median([rng.choice(xs) for _ in xs])

    vals = sorted((med(a_mv) - med(a_raw)) - (med(b_mv) - med(b_raw)) for _ in range(n))
    return vals[int(0.025 * n)], vals[int(0.975 * n) - 1]


def commit_of(name):
    if name == "current":
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        return f"installed build (HEAD {head}{', uncommitted changes' if dirty else ''})"
    sha = subprocess.run(["git", "rev-parse", "--short=10", f"{name}^{{commit}}"], capture_output=True, text=True).stdout.strip()
    return f"{name} ({sha})"


def main():
    builds = []
    with open(sys.argv[1]) as f:
        for line in f:
            name, sock, port = line.split()
            conn = psycopg2.connect(host=sock, port=int(port), dbname="postgres", user="postgres")
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("CREATE EXTENSION matviews")
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'matviews'")
            version = cur.fetchone()[0]
            cur.execute("CREATE TABLE p1_base AS SELECT g AS id, 'item ' || g AS label FROM generate_series(1, 10) g")
            cur.execute("SELECT matviews.create('p1_tiny', 'SELECT id, label FROM public.p1_base')")
            builds.append({"name": name, "cur": cur, "version": version, "raw": [], "mv": []})
    log(f"{len(builds)} builds, {WARMUP} warm-up rounds, {ITERS} measured rounds")
    rng = random.Random(7)
    for i in range(WARMUP + ITERS):
        order = builds[:]
        rng.shuffle(order)
        for b in order:
            pair = [("raw", RAW), ("mv", MV)]
            if i % 2:
                pair.reverse()
            for kind, sql in pair:
                ms, resp = timed(b["cur"], sql)
                if kind == "mv":
                    check(resp)
                if i >= WARMUP:
                    b[kind].append(ms)
    cur0 = builds[0]
    lines = [
        "# P1 before and after, one run",
        "",
        f"{ITERS} rounds after {WARMUP} warm-up rounds; in each round every build runs one raw "
        f"REFRESH and one matviews.refresh(regular) of a 10-row view, builds in a shuffled order; "
        f"fsync {os.environ.get('BENCH_FSYNC', 'on')}. Milliseconds, medians.",
        "",
        "| build | extension | raw REFRESH | matviews.refresh | added | added − installed (95 % CI) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in builds:
        raw, mv = statistics.median(b["raw"]), statistics.median(b["mv"])
        added = mv - raw
        b["added"] = added
        if b is cur0:
            diff = "—"
        else:
            lo, hi = bootstrap(b["mv"], b["raw"], cur0["mv"], cur0["raw"])
            diff = f"{added - cur0['added']:+.3f} ({lo:+.3f} … {hi:+.3f})"
        lines.append(
            f"| {commit_of(b['name'])} | {b['version']} | {raw:.3f} | {mv:.3f} | {added:+.3f} | {diff} |"
        )
    target = "PASS" if cur0["added"] <= 0.25 else "MISS"
    lines += ["", f"P1 target ≤ 0.25 ms added: installed build {cur0['added']:+.3f} ms, {target}.", ""]
    text = "\n".join(lines)
    print(text)
    with open("bench/results/p1_ab.md", "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
