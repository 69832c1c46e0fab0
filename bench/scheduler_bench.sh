#!/usr/bin/env bash
# Scheduler benchmark (P4): commit->start and due->start latency of matviews' background
# worker, and the idle CPU of its processes with 1,000 schedules, side by side with pg_cron.
#
#   bash bench/scheduler_bench.sh            # from the repository root, after `make install`
#
# Starts its own throw-away cluster (pg_virtualenv -t) with matviews and pg_cron preloaded and
# track_commit_timestamp on, runs bench/scheduler_bench.py in it (3 to 4 minutes), prints a
# Markdown report and writes it to bench/results/scheduler.md (raw samples in scheduler.json).
# Installs Debian's postgresql-15-cron with apt when it is missing (as root or through sudo);
# without it the pg_cron rows are left out. Knobs: BENCH_* variables (see the .py), and
# BENCH_PG_OPTS for extra pg_virtualenv options (e.g. BENCH_PG_OPTS="-o fsync=on").
set -euo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PY=/usr/bin/python3   # Debian's python3 has psycopg2; a pyenv python3 on PATH may not
SHAREDIR=$("$PG_CONFIG" --sharedir)

if [ ! -f "$SHAREDIR/extension/matviews.control" ]; then
    echo "matviews is not installed: run make install first" >&2
    exit 1
fi
if ! "$PY" -c 'import psycopg2' 2>/dev/null; then
    echo "$PY cannot import psycopg2 (apt-get install python3-psycopg2)" >&2
    exit 1
fi

if [ ! -f "$SHAREDIR/extension/pg_cron.control" ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
    echo "installing postgresql-15-cron for the comparison" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15-cron >&2 ||
        { "${as_root[@]}" apt-get update -q >&2 &&
          "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15-cron >&2; } ||
        echo "could not install postgresql-15-cron; running without the pg_cron comparison" >&2
fi

opts=(-o track_commit_timestamp=on -o max_worker_processes=32)
if [ -f "$SHAREDIR/extension/pg_cron.control" ]; then
    # pg_cron: one database, and jobs as background workers (no libpq login needed).
    opts+=(-o shared_preload_libraries=matviews,pg_cron -o cron.database_name=postgres
           -o cron.use_background_workers=on)
else
    opts+=(-o shared_preload_libraries=matviews)
fi
# shellcheck disable=SC2206
opts+=(${BENCH_PG_OPTS:-})

mkdir -p bench/results
export BENCH_OUT=${BENCH_OUT:-$PWD/bench/results/scheduler.md}
BENCH_GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_GIT_REV
# A safety net only: the script bounds each phase itself.
timeout --signal=TERM "${BENCH_TIMEOUT:-900}" \
    pg_virtualenv -t "${opts[@]}" "$PY" "$PWD/bench/scheduler_bench.py"
