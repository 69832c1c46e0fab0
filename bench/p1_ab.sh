#!/usr/bin/env bash
# P1 before and after, in one run: the fixed cost matviews.refresh adds to a raw REFRESH of a
# tiny view, measured at once for the installed build and for earlier commits, side by side.
#
#   bash bench/p1_ab.sh [--baseline REF]... [--iters N] [--fsync on|off]
#
# Each baseline commit is built in a temporary git worktree and installed into its own relocated
# copy of the PostgreSQL 15 installation (PostgreSQL finds its share and lib directories relative
# to its binaries, so a copy of /usr/lib/postgresql/15 and /usr/share/postgresql/15 under another
# prefix is a second, independent installation). Every build gets its own throw-away cluster
# (matviews preloaded, fsync on by default), and bench/p1_ab.py interleaves the calls of all of
# them, in a shuffled order per round, so machine drift lands on every build alike. It prints the
# median added milliseconds of each build and the difference to the installed one with a
# bootstrap interval, and writes bench/results/p1_ab.md.
#
# The installed build (make install) is "current". Without --baseline the baseline is the commit
# before P1's work began (bf42eef^, before plans were kept). Needs what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BASELINES=()
ITERS=${BENCH_ITERS:-400}
FSYNC=${BENCH_FSYNC:-on}
while [ $# -gt 0 ]; do
    case "$1" in
        --baseline) BASELINES+=("$2"); shift 2 ;;
        --iters) ITERS=$2; shift 2 ;;
        --fsync) FSYNC=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "p1_ab: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ ${#BASELINES[@]} -gt 0 ] || BASELINES=("bf42eef^")
[[ $ITERS =~ ^[1-9][0-9]*$ ]] || { echo "p1_ab: --iters must be a positive integer" >&2; exit 2; }
case "$FSYNC" in on|off) ;; *) echo "p1_ab: --fsync takes on or off" >&2; exit 2 ;; esac

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BINDIR=$("$PG_CONFIG" --bindir)
PGLIB=$(dirname "$BINDIR")                # /usr/lib/postgresql/15
PGSHARE=$("$PG_CONFIG" --sharedir)        # /usr/share/postgresql/15
[ -f "$("$PG_CONFIG" --pkglibdir)/matviews.so" ] ||
    { echo "p1_ab: matviews is not installed; run make && make install first" >&2; exit 1; }
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null ||
    { echo "p1_ab: python3-psycopg2 missing; run scripts/setup.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/matviews-p1ab.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for d in "$WORK"/cluster-*; do
        [ -d "$d/data" ] || continue
        runuser -u postgres -- "$(cat "$d/bindir")/pg_ctl" -D "$d/data" -m immediate stop \
            >/dev/null 2>&1 || true
    done
    for w in "$WORK"/src-*; do
        [ -d "$w" ] && git -C "$ROOT" worktree remove --force "$w" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# build NAME BINDIR: a cluster of the installation at BINDIR, started on a free port; prints the
# port.
PORT=55431
start_cluster() {
    local name=$1 bindir=$2 dir="$WORK/cluster-$1"
    mkdir -p "$dir"
    echo "$bindir" >"$dir/bindir"
    chown -R postgres "$dir" 2>/dev/null || true
    as_postgres "$bindir/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
    cat >>"$dir/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'matviews'
fsync = $FSYNC
max_worker_processes = 16
EOF
    as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
    echo "$name $dir $PORT" >>"$WORK/clusters"
    PORT=$((PORT + 1))
}

exec 9>/tmp/matviews-install.lock
flock 9  # nobody reinstalls the extension under a running measurement
start_cluster current "$BINDIR"

i=0
for ref in "${BASELINES[@]}"; do
    i=$((i + 1))
    commit=$(git rev-parse --verify "$ref^{commit}")
    src="$WORK/src-$i"
    prefix="$WORK/install-$i"
    echo "p1_ab: building $ref (${commit:0:10})" >&2
    git worktree add --detach "$src" "$commit" >/dev/null 2>&1
    make -C "$src" -j2 all >"$WORK/build-$i.log" 2>&1 ||
        { tail -20 "$WORK/build-$i.log" >&2; exit 1; }
    mkdir -p "$prefix/usr/lib/postgresql" "$prefix/usr/share/postgresql"
    cp -a "$PGLIB" "$prefix/usr/lib/postgresql/"
    cp -a "$PGSHARE" "$prefix/usr/share/postgresql/"
    lib="$prefix/usr/lib/postgresql/$(basename "$PGLIB")/lib"
    ext="$prefix/usr/share/postgresql/$(basename "$PGSHARE")/extension"
    rm -f "$ext"/matviews*
    cp "$src/matviews.so" "$lib/"
    cp "$src/matviews.control" "$src"/extension/matviews--*.sql "$ext/"
    start_cluster "${ref}" "$prefix/usr/lib/postgresql/$(basename "$PGLIB")/bin"
done

mkdir -p bench/results
BENCH_ITERS=$ITERS BENCH_FSYNC=$FSYNC /usr/bin/python3 bench/p1_ab.py "$WORK/clusters"
