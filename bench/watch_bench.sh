#!/usr/bin/env bash
# matviews watch benchmark: P5 (what capturing changes costs a writer) and P7 (latency from a
# writer's commit to the refresh that includes it), side by side in one run.
#
#   bash bench/watch_bench.sh [--rows N] [--reps N] [--secs N] [--clients 1,4,8]
#                             [--modes none,floor,watch,capture] [--p7-secs N] [--p7-rows N]
#                             [--p7-rate N] [--only p5,ab,p7] [--plot] [--fsync on|off]
#
# Needs the extension installed (make install) with matviews.watch, pgbench (postgresql-15) and
# what scripts/setup.sh installs (pg_virtualenv, python3-psycopg2). Starts its own throw-away
# cluster with pg_virtualenv (matviews preloaded), talks to it over localhost only and drops it
# at the end. Prints a table (targets, ratios, PASS/MISS) and writes it to
# bench/results/watch_latest.md (raw numbers in watch_latest.json).
#
# P5: pgbench single-row UPDATEs of a --rows table (default 1,000,000) that a watched GROUP BY
#     view reads, at each client count, in each mode, interleaved (rep > clients > mode, the mode
#     order rotating): none (no trigger), floor (a plpgsql no-op statement trigger), watch
#     (matviews.watch, min_interval 1 second, so refreshes run during the load) and capture
#     (matviews.watch with min_interval 1 hour: the capture alone, at most one refresh).
# A/B: the same, with one table per mode (none, floor, watch) and one pgbench run per (rep,
#     clients) choosing the table at random per transaction, so that the modes share every
#     moment's CPU, steal and disk: the mean-latency difference is the capture's cost per
#     transaction without the drift between runs (the refreshes' CPU is shared, not charged).
# P7: a writer paced at --p7-rate single-row UPDATE commits/s for --p7-secs on a --p7-rows table
#     (default 100,000), one view per strategy (concurrent, swap), watched with min_interval 0;
#     commit -> start and commit -> finish of the first 'watch' run started after each commit.
#
# Flags and their environment equivalents:
#   --rows N          BENCH_ROWS       rows of the P5 base table (1000000)
#   --reps N          BENCH_REPS       repetitions of every (clients, mode) run, median (3)
#   --secs N          BENCH_SECS       seconds of each pgbench run (20)
#   --clients LIST    BENCH_CLIENTS    client counts, comma-separated (1,4,8); pgbench -c N -j N
#   --modes LIST      BENCH_MODES      P5 modes (none,floor,watch,capture); none,floor needs no
#                                      matviews.watch (a dry run before the feature exists)
#   --p7-secs N       BENCH_P7_SECS    seconds of the paced writer per strategy (20)
#   --p7-rows N       BENCH_P7_ROWS    rows of each P7 base table (100000)
#   --p7-rate N       BENCH_P7_RATE    writer commits per second (100)
#   --only LIST       BENCH_PARTS      parts to run, comma-separated: p5, ab, p7 (p5,ab,p7)
#   --plot            BENCH_PLOT=1     bench/results/watch_tps.png (TPS against clients per mode);
#                                      installs python3-matplotlib through apt if missing (root
#                                      or sudo), else skips the plot
#   --fsync on|off    BENCH_FSYNC      the server's fsync (on, as refresh_bench; pg_virtualenv's
#                                      own default is off)
#                     BENCH_TIMEOUT    the whole run's time limit in seconds (3600)
#                     BENCH_TRIGGER_GONE_WAIT_S  seconds to wait, after matviews.unwatch, for the
#                                      matviews_watch trigger to go before dropping it (10)
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_COMMAND="bash bench/watch_bench.sh${*:+ $*}"
usage() { sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//'; }

export BENCH_ROWS=${BENCH_ROWS:-1000000}
export BENCH_REPS=${BENCH_REPS:-3}
export BENCH_SECS=${BENCH_SECS:-20}
export BENCH_CLIENTS=${BENCH_CLIENTS:-1,4,8}
export BENCH_MODES=${BENCH_MODES:-none,floor,watch,capture}
export BENCH_P7_SECS=${BENCH_P7_SECS:-20}
export BENCH_P7_ROWS=${BENCH_P7_ROWS:-100000}
export BENCH_P7_RATE=${BENCH_P7_RATE:-100}
export BENCH_PARTS=${BENCH_PARTS:-p5,ab,p7}
export BENCH_PLOT=${BENCH_PLOT:-0}
export BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}
BENCH_FSYNC=${BENCH_FSYNC:-on}

while [ $# -gt 0 ]; do
    case "$1" in
        --rows) BENCH_ROWS=$2; shift 2 ;;
        --reps) BENCH_REPS=$2; shift 2 ;;
        --secs) BENCH_SECS=$2; shift 2 ;;
        --clients) BENCH_CLIENTS=$2; shift 2 ;;
        --modes) BENCH_MODES=$2; shift 2 ;;
        --p7-secs) BENCH_P7_SECS=$2; shift 2 ;;
        --p7-rows) BENCH_P7_ROWS=$2; shift 2 ;;
        --p7-rate) BENCH_P7_RATE=$2; shift 2 ;;
        --only) BENCH_PARTS=$2; shift 2 ;;
        --fsync) BENCH_FSYNC=$2; shift 2 ;;
        --plot) BENCH_PLOT=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "watch_bench: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in BENCH_ROWS BENCH_REPS BENCH_SECS BENCH_P7_SECS BENCH_P7_ROWS BENCH_P7_RATE BENCH_TIMEOUT; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "watch_bench: $v must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done
if ! [[ $BENCH_CLIENTS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; then
    echo "watch_bench: --clients takes a comma-separated list of positive integers" >&2
    exit 2
fi
if ! [[ $BENCH_MODES =~ ^(none|floor|watch|capture)(,(none|floor|watch|capture))*$ ]]; then
    echo "watch_bench: --modes takes a comma-separated list of none, floor, watch, capture" >&2
    exit 2
fi
if ! [[ $BENCH_PARTS =~ ^(p5|ab|p7)(,(p5|ab|p7))*$ ]]; then
    echo "watch_bench: --only takes a comma-separated list of p5, ab, p7" >&2
    exit 2
fi
case "$BENCH_FSYNC" in on|off) ;; *) echo "watch_bench: --fsync takes on or off" >&2; exit 2 ;; esac
export BENCH_FSYNC

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
    echo "watch_bench: python3 with psycopg2 not found; run scripts/setup.sh (python3-psycopg2)" >&2
    exit 1
fi

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/matviews.control" ] ||
   [ ! -f "$("$PG_CONFIG" --pkglibdir)/matviews.so" ]; then
    echo "watch_bench: matviews is not installed; run make && make install first" >&2
    exit 1
fi
command -v pg_virtualenv >/dev/null || { echo "watch_bench: pg_virtualenv missing (postgresql-common)" >&2; exit 1; }
# pgbench of the server's version (Debian's /usr/bin/pgbench is a wrapper that picks it too).
PGBENCH=$("$PG_CONFIG" --bindir)/pgbench
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench || true)
if [[ $BENCH_PARTS =~ p5|ab ]] && [ -z "$PGBENCH" ]; then
    echo "watch_bench: pgbench not found (postgresql-15 or postgresql-client-15)" >&2
    exit 1
fi
export BENCH_PGBENCH=$PGBENCH

if [ "$BENCH_PLOT" = 1 ] && ! "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
    if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
        echo "watch_bench: installing python3-matplotlib for --plot" >&2
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
            python3-matplotlib >/dev/null 2>&1 ||
            echo "watch_bench: could not install python3-matplotlib; the plot will be skipped" >&2
    else
        echo "watch_bench: no python3-matplotlib and no root/sudo; the plot will be skipped" >&2
    fi
fi

# Server settings as in refresh_bench: matviews preloaded (its scheduler runs the watch
# refreshes), no checkpoint in the middle of a measurement (the benchmark runs one before each),
# fsync on by default so that every writer commit pays for its WAL flush as on a real server.
SERVER_OPTS=(-o shared_preload_libraries=matviews -o max_worker_processes=32
             -o max_wal_size=8GB -o checkpoint_timeout=1h -o "fsync=$BENCH_FSYNC"
             -o log_autovacuum_min_duration=0)
export BENCH_SERVER_OPTS="max_wal_size=8GB, checkpoint_timeout=1h, fsync=$BENCH_FSYNC, log_autovacuum_min_duration=0"
export BENCH_COMMAND
export BENCH_GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p bench/results
export PYTHONDONTWRITEBYTECODE=1
exec pg_virtualenv -t "${SERVER_OPTS[@]}" "$PYTHON" bench/watch_bench.py
