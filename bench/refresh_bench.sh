#!/usr/bin/env bash
# matviews refresh benchmark: targets P1, P2 and P3, side by side in one run.
#
#   bash bench/refresh_bench.sh [--rows N | --sizes LIST] [--runs N] [--tiny-iters N] [--p2-runs N]
#                               [--no-dep] [--plot]
#
# Needs the extension installed (make install) and what scripts/setup.sh installs (PostgreSQL 15,
# postgresql-common for pg_virtualenv, python3-psycopg2). Starts its own throw-away cluster with
# pg_virtualenv (matviews preloaded), loads a base table and a materialized view of --rows rows
# (default 1,000,000) with two indexes, measures, prints a table and writes it to
# bench/results/latest.md. With --sizes, the view is rebuilt at every listed size and P1 and P3
# are measured at each (P2 only at the largest, which takes the place of --rows). --plot also
# writes bench/results/reader_latency.{csv,png} and, for the sizes, p1_p3_by_size.{csv,png}
# (installing python3-matplotlib through apt when it is missing and we are root or have sudo;
# without it, the reader plot is an SVG and the by-size PNG is skipped). Everything stays on
# localhost; the cluster is dropped at the end. It does not take the install lock itself (the
# README's command line runs it under `flock -o /tmp/matviews-install.lock`, which a lock taken
# here would deadlock against).
#
# Flags and their environment equivalents:
#   --rows N        BENCH_ROWS        rows of the big view (1000000)
#   --sizes LIST    BENCH_SIZES       comma-separated row counts, e.g. 10000,100000,1000000: P1 and
#                                     P3 at every size, P2 at the largest (replaces --rows)
#   --runs N        BENCH_RUNS        runs of each operation for P1 (big view, each size) and P3,
#                                     median (3)
#   --tiny-iters N  BENCH_TINY_ITERS  calls of each operation on the tiny view for P1 (200)
#   --p2-runs N     BENCH_P2_RUNS     refreshes of each strategy with the reader beside (1)
#   --no-dep        BENCH_DEP=0       skips the P2 scenario of a swap with a dependent
#                                     materialized view of the view's size (runs by default)
#   --plot          BENCH_PLOT=1      reader-latency plot, and P1/P3 by size
#   --fsync on|off  BENCH_FSYNC       the server's fsync (on; pg_virtualenv's default is off)
#                   BENCH_TIMEOUT     the whole run's time limit in seconds (3600)
#                   BENCH_LONG_READER_S  query length of the long-running reader in the extra
#                                     swap scenarios (0.3; 0 skips them)
#                   BENCH_SHORT_LOCK_TIMEOUT  swap_lock_timeout of the second one (40ms)
#                   BENCH_AUTOVACUUM_SCENARIO  0 skips the swap during an autovacuum (1)
set -euo pipefail
cd "$(dirname "$0")/.."

# The opening comment, up to its first non-comment line, is the usage text.
usage() { awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"; }

export BENCH_ROWS=${BENCH_ROWS:-1000000}
export BENCH_RUNS=${BENCH_RUNS:-3}
export BENCH_TINY_ITERS=${BENCH_TINY_ITERS:-200}
export BENCH_P2_RUNS=${BENCH_P2_RUNS:-1}
export BENCH_PLOT=${BENCH_PLOT:-0}
export BENCH_SIZES=${BENCH_SIZES:-}
export BENCH_DEP=${BENCH_DEP:-1}
export BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}
BENCH_FSYNC=${BENCH_FSYNC:-on}

ROWS_FLAG=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) BENCH_ROWS=$2; ROWS_FLAG=1; shift 2 ;;
        --sizes) BENCH_SIZES=$2; shift 2 ;;
        --no-dep) BENCH_DEP=0; shift ;;
        --runs) BENCH_RUNS=$2; shift 2 ;;
        --tiny-iters) BENCH_TINY_ITERS=$2; shift 2 ;;
        --p2-runs) BENCH_P2_RUNS=$2; shift 2 ;;
        --fsync) BENCH_FSYNC=$2; shift 2 ;;
        --plot) BENCH_PLOT=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "refresh_bench: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in BENCH_ROWS BENCH_RUNS BENCH_TINY_ITERS BENCH_P2_RUNS BENCH_TIMEOUT; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "refresh_bench: $v must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done
if [ -n "$BENCH_SIZES" ]; then
    # The largest size is the P2 size: a --rows beside --sizes would be silently ignored.
    if [ "$ROWS_FLAG" = 1 ]; then
        echo "refresh_bench: give --rows or --sizes, not both (P2 runs at the largest size)" >&2
        exit 2
    fi
    if ! [[ $BENCH_SIZES =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; then
        echo "refresh_bench: --sizes takes comma-separated positive row counts (got '$BENCH_SIZES')" >&2
        exit 2
    fi
fi
case "$BENCH_DEP" in 0|1) ;; *) echo "refresh_bench: BENCH_DEP takes 0 or 1" >&2; exit 2 ;; esac
case "$BENCH_FSYNC" in on|off) ;; *) echo "refresh_bench: --fsync takes on or off" >&2; exit 2 ;; esac

# The Debian python3 (where apt's python3-psycopg2 lives), even when another python3 comes first
# in PATH.
PYTHON=
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import psycopg2' 2>/dev/null; then
        PYTHON=$(command -v "$p")
        break
    fi
done
if [ -z "$PYTHON" ]; then
    echo "refresh_bench: python3 with psycopg2 not found; run scripts/setup.sh (python3-psycopg2)" >&2
    exit 1
fi

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/matviews.control" ] ||
   [ ! -f "$("$PG_CONFIG" --pkglibdir)/matviews.so" ]; then
    echo "refresh_bench: matviews is not installed; run make && make install first" >&2
    exit 1
fi
command -v pg_virtualenv >/dev/null || { echo "refresh_bench: pg_virtualenv missing (postgresql-common)" >&2; exit 1; }

if [ "$BENCH_PLOT" = 1 ] && ! "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
    # Optional: without matplotlib the plot is drawn as a plain SVG.
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
    if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
        echo "refresh_bench: installing python3-matplotlib for --plot" >&2
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
            python3-matplotlib >/dev/null 2>&1 ||
            echo "refresh_bench: could not install python3-matplotlib; the plot will be an SVG" >&2
    else
        echo "refresh_bench: no python3-matplotlib and no root/sudo; the plot will be an SVG" >&2
    fi
fi

# Server settings: matviews preloaded as in `make demo`; checkpoints only where the benchmark asks
# for them (before each timed operation), not in the middle of one; fsync on by default, so that
# commits (a swap's included) pay for WAL flushes as on a real server; autovacuum on, as on a real
# server, and logged, so the report can tell which slow swaps met an autovacuum of the view.
SERVER_OPTS=(-o shared_preload_libraries=matviews -o max_worker_processes=32
             -o max_wal_size=8GB -o checkpoint_timeout=1h -o "fsync=$BENCH_FSYNC"
             -o log_autovacuum_min_duration=0)
export BENCH_SERVER_OPTS="max_wal_size=8GB, checkpoint_timeout=1h, fsync=$BENCH_FSYNC, log_autovacuum_min_duration=0"

mkdir -p bench/results
export PYTHONDONTWRITEBYTECODE=1
exec pg_virtualenv -t "${SERVER_OPTS[@]}" "$PYTHON" bench/refresh_bench.py
