#!/usr/bin/env bash
# matviews incremental refresh benchmark: P6 (refresh time against changed rows, incremental
# beside regular, concurrent and swap on the same data), P5 (what the capture triggers cost a
# writer) and P7 (commit -> change visible in a watched incremental view), in one run.
#
#   bash bench/incremental_bench.sh [--quick] [--plot] [--sizes 100000,1000000] [--reps N]
#                                   [--points 1,0.001,0.01,0.1] [--views groupby,join]
#                                   [--p5-rows N] [--p5-secs N] [--p5-reps N] [--clients 1,4,8]
#                                   [--p7-rows N] [--p7-secs N] [--p7-rate N]
#                                   [--only p6,p5,p7] [--inc-timeout S] [--no-check] [--no-profile]
#                                   [--fsync on|off]
#
# Needs the extension installed (make install) with refresh_strategy 'incremental' (0.4),
# pgbench (postgresql-15) and what scripts/setup.sh installs (pg_virtualenv, python3-psycopg2).
# Starts its own throw-away cluster with pg_virtualenv (matviews preloaded, so that the scheduler
# runs P7's watch refreshes), talks to it over localhost only and drops it at the end. Prints a
# table (targets, ratios, PASS/MISS) and writes it to bench/results/incremental_latest.md (raw
# numbers in incremental_latest.json, plans of the generated statements in
# incremental_plans.txt).
#
# P6: for each base size (--sizes) and view (groupby: SELECT g, count(*), sum(v) ... GROUP BY g
#     with 10,000 groups; join: the notification-preferences view, 1,000 view rows per
#     organization), for each change (--points: 1 row, or a fraction of the changing table's
#     rows, in one UPDATE statement), --reps times: apply the change, then on the same data the
#     incremental refresh, regular, concurrent and swap (each after a CHECKPOINT; swap last,
#     followed by an untimed incremental refresh that re-establishes the capture position, since
#     the swapped view is a new relation). The groupby view also gets a change of the same number
#     of rows inside 1 % of the groups, and at the largest size a 1-row change without the
#     index on g. The responses tell which path ran; a fallback is never counted as incremental.
# P5: pgbench single-row UPDATEs (UPDATE t SET v = v + 1 WHERE id = :id) of two identical
#     tables, one with no trigger, one read by an incremental view (its capture triggers): runs
#     interleaved (rep > clients > mode, the order rotating), and A/B inside one pgbench run
#     choosing the table at random per transaction. The change log's growth per statement.
# P7: a writer paced at --p7-rate single-row UPDATE commits/s, each setting a unique increasing
#     value, on a table read by an incremental view watched with min_interval 0; a poller reads
#     the view's max() every millisecond; latency = first poll that sees the value - the
#     writer's commit acknowledgement.
#
# Flags and their environment equivalents:
#   --quick           BENCH_QUICK=1    a smoke run in a few minutes: --sizes 100000, --p5-rows
#                                      100000 --p5-secs 5 --p5-reps 1, --p7-rows 100000
#                                      --p7-secs 8 (flags given after --quick still apply)
#   --sizes LIST      BENCH_SIZES      base sizes for P6 (100000,1000000)
#   --reps N          BENCH_REPS       repetitions of every P6 measurement, median (3)
#   --points LIST     BENCH_POINTS     P6 changes: 1 = one row, else a fraction (1,0.001,0.01,0.1)
#   --views LIST      BENCH_VIEWS      P6 views (groupby,join)
#   --p5-rows N       BENCH_P5_ROWS    rows of each P5 table (1000000)
#   --p5-secs N       BENCH_P5_SECS    seconds of each pgbench run (15)
#   --p5-reps N       BENCH_P5_REPS    repetitions of every (clients, mode) run (2)
#   --clients LIST    BENCH_CLIENTS    pgbench client counts (1,4,8); -c N -j N
#   --p7-rows N       BENCH_P7_ROWS    rows of the P7 table (1000000)
#   --p7-secs N       BENCH_P7_SECS    seconds of the paced writer (20)
#   --p7-rate N       BENCH_P7_RATE    writer commits per second (100)
#   --only LIST       BENCH_PARTS      parts to run: p6, p5, p7 (p6,p5,p7)
#   --inc-timeout S   BENCH_INC_TIMEOUT  statement_timeout of each timed incremental refresh (60);
#                                      one cancelled is reported as a timeout, and when every
#                                      repetition of a change times out, larger changes of that
#                                      view measure only the full strategies
#   --no-check        BENCH_CHECK=0    skip comparing each view with its query (EXCEPT ALL)
#   --no-profile      BENCH_PROFILE=0  skip the auto_explain profile of the incremental refresh
#   --plot            BENCH_PLOT=1     bench/incremental_p6.png (bench/results/incremental_p6_quick.png
#                                      with --quick); installs python3-matplotlib through apt if
#                                      missing (root or sudo), else skips the plot
#   --fsync on|off    BENCH_FSYNC      the server's fsync (on)
#                     BENCH_TIMEOUT    the whole run's time limit in seconds (7200)
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_COMMAND="bash bench/incremental_bench.sh${*:+ $*}"
usage() { sed -n '2,65p' "$0" | sed 's/^# \{0,1\}//'; }

quick_defaults() {
    BENCH_SIZES=100000 BENCH_P5_ROWS=100000 BENCH_P5_SECS=5 BENCH_P5_REPS=1
    BENCH_P7_ROWS=100000 BENCH_P7_SECS=8 BENCH_QUICK=1
}
[ "${BENCH_QUICK:-0}" = 1 ] && quick_defaults
export BENCH_SIZES=${BENCH_SIZES:-100000,1000000}
export BENCH_REPS=${BENCH_REPS:-3}
export BENCH_POINTS=${BENCH_POINTS:-1,0.001,0.01,0.1}
export BENCH_VIEWS=${BENCH_VIEWS:-groupby,join}
export BENCH_P5_ROWS=${BENCH_P5_ROWS:-1000000}
export BENCH_P5_SECS=${BENCH_P5_SECS:-15}
export BENCH_P5_REPS=${BENCH_P5_REPS:-2}
export BENCH_CLIENTS=${BENCH_CLIENTS:-1,4,8}
export BENCH_P7_ROWS=${BENCH_P7_ROWS:-1000000}
export BENCH_P7_SECS=${BENCH_P7_SECS:-20}
export BENCH_P7_RATE=${BENCH_P7_RATE:-100}
export BENCH_PARTS=${BENCH_PARTS:-p6,p5,p7}
export BENCH_CHECK=${BENCH_CHECK:-1}
export BENCH_INC_TIMEOUT=${BENCH_INC_TIMEOUT:-60}
export BENCH_PROFILE=${BENCH_PROFILE:-1}
export BENCH_PLOT=${BENCH_PLOT:-0}
export BENCH_QUICK=${BENCH_QUICK:-0}
export BENCH_TIMEOUT=${BENCH_TIMEOUT:-7200}
BENCH_FSYNC=${BENCH_FSYNC:-on}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick_defaults; shift ;;
        --sizes) BENCH_SIZES=$2; shift 2 ;;
        --reps) BENCH_REPS=$2; shift 2 ;;
        --points) BENCH_POINTS=$2; shift 2 ;;
        --views) BENCH_VIEWS=$2; shift 2 ;;
        --p5-rows) BENCH_P5_ROWS=$2; shift 2 ;;
        --p5-secs) BENCH_P5_SECS=$2; shift 2 ;;
        --p5-reps) BENCH_P5_REPS=$2; shift 2 ;;
        --clients) BENCH_CLIENTS=$2; shift 2 ;;
        --p7-rows) BENCH_P7_ROWS=$2; shift 2 ;;
        --p7-secs) BENCH_P7_SECS=$2; shift 2 ;;
        --p7-rate) BENCH_P7_RATE=$2; shift 2 ;;
        --only) BENCH_PARTS=$2; shift 2 ;;
        --inc-timeout) BENCH_INC_TIMEOUT=$2; shift 2 ;;
        --no-check) BENCH_CHECK=0; shift ;;
        --no-profile) BENCH_PROFILE=0; shift ;;
        --fsync) BENCH_FSYNC=$2; shift 2 ;;
        --plot) BENCH_PLOT=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "incremental_bench: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
export BENCH_SIZES BENCH_REPS BENCH_POINTS BENCH_VIEWS BENCH_P5_ROWS BENCH_P5_SECS BENCH_P5_REPS \
    BENCH_CLIENTS BENCH_P7_ROWS BENCH_P7_SECS BENCH_P7_RATE BENCH_PARTS BENCH_CHECK BENCH_PROFILE \
    BENCH_PLOT BENCH_QUICK BENCH_TIMEOUT BENCH_INC_TIMEOUT
for v in BENCH_REPS BENCH_INC_TIMEOUT BENCH_P5_ROWS BENCH_P5_SECS BENCH_P5_REPS BENCH_P7_ROWS BENCH_P7_SECS \
         BENCH_P7_RATE BENCH_TIMEOUT; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "incremental_bench: $v must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done
if ! [[ $BENCH_SIZES =~ ^[1-9][0-9]{3,}(,[1-9][0-9]{3,})*$ ]]; then
    echo "incremental_bench: --sizes takes a comma-separated list of integers >= 1000" >&2
    exit 2
fi
if ! [[ $BENCH_CLIENTS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]]; then
    echo "incremental_bench: --clients takes a comma-separated list of positive integers" >&2
    exit 2
fi
if ! [[ $BENCH_POINTS =~ ^(1|0\.[0-9]+)(,(1|0\.[0-9]+))*$ ]]; then
    echo "incremental_bench: --points takes 1 (one row) and fractions below 1, comma-separated" >&2
    exit 2
fi
if ! [[ $BENCH_VIEWS =~ ^(groupby|join)(,(groupby|join))*$ ]]; then
    echo "incremental_bench: --views takes a comma-separated list of groupby, join" >&2
    exit 2
fi
if ! [[ $BENCH_PARTS =~ ^(p5|p6|p7)(,(p5|p6|p7))*$ ]]; then
    echo "incremental_bench: --only takes a comma-separated list of p6, p5, p7" >&2
    exit 2
fi
case "$BENCH_FSYNC" in on|off) ;; *) echo "incremental_bench: --fsync takes on or off" >&2; exit 2 ;; esac
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
    echo "incremental_bench: python3 with psycopg2 not found; run scripts/setup.sh (python3-psycopg2)" >&2
    exit 1
fi

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/matviews.control" ] ||
   [ ! -f "$("$PG_CONFIG" --pkglibdir)/matviews.so" ]; then
    echo "incremental_bench: matviews is not installed; run make && make install first" >&2
    exit 1
fi
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/auto_explain.so" ] && [ "$BENCH_PROFILE" = 1 ]; then
    echo "incremental_bench: auto_explain not found; the profile will be skipped" >&2
    BENCH_PROFILE=0
fi
command -v pg_virtualenv >/dev/null || { echo "incremental_bench: pg_virtualenv missing (postgresql-common)" >&2; exit 1; }
PGBENCH=$("$PG_CONFIG" --bindir)/pgbench
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench || true)
if [[ $BENCH_PARTS =~ p5 ]] && [ -z "$PGBENCH" ]; then
    echo "incremental_bench: pgbench not found (postgresql-15 or postgresql-client-15)" >&2
    exit 1
fi
export BENCH_PGBENCH=$PGBENCH

if [ "$BENCH_PLOT" = 1 ] && ! "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
    if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
        echo "incremental_bench: installing python3-matplotlib for --plot" >&2
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
            python3-matplotlib >/dev/null 2>&1 ||
            echo "incremental_bench: could not install python3-matplotlib; the plot will be skipped" >&2
    else
        echo "incremental_bench: no python3-matplotlib and no root/sudo; the plot will be skipped" >&2
    fi
fi

# Server settings as in refresh_bench and watch_bench: matviews preloaded (its scheduler runs the
# watch refreshes of P7), no checkpoint in the middle of a measurement (the benchmark runs one
# before each timed refresh and pgbench run), fsync on by default so that every commit pays for
# its WAL flush as on a real server.
SERVER_OPTS=(-o shared_preload_libraries=matviews -o max_worker_processes=32
             -o max_wal_size=8GB -o checkpoint_timeout=1h -o "fsync=$BENCH_FSYNC"
             -o log_autovacuum_min_duration=0)
export BENCH_SERVER_OPTS="shared_preload_libraries=matviews, max_wal_size=8GB, checkpoint_timeout=1h, fsync=$BENCH_FSYNC"
export BENCH_COMMAND
export BENCH_GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_GIT_DIRTY=$(git status --porcelain --untracked-files=no -- src extension 2>/dev/null | wc -l)
export BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# The installed library: the report names it, and says so if it changed during the run.
export BENCH_SO=$("$PG_CONFIG" --pkglibdir)/matviews.so
export BENCH_SO_MD5=$(md5sum "$BENCH_SO" | cut -d' ' -f1)

mkdir -p bench/results
export PYTHONDONTWRITEBYTECODE=1
exec pg_virtualenv -t "${SERVER_OPTS[@]}" "$PYTHON" bench/incremental_bench.py
