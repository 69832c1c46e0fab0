#!/usr/bin/env bash
# Runs every matviews test suite against the installed extension and ends with one line,
# "N passed, M failed". Suites:
#   unit       C++ unit tests of the pure core (CMake + GoogleTest, under CTest)
#   regress    pg_regress (sql/, expected/) in a throw-away cluster (pg_virtualenv)
#   isolation  pg_isolation_regress (test/isolation/specs) in a throw-away cluster
#   tap        prove with PostgreSQL::Test::Cluster (test/tap), as an unprivileged user
#   clients    the client examples (examples/): Python psycopg2 and Rails ActiveRecord
#   lint       project rules checked on the source tree
# Exits non-zero when anything failed. SUITES="regress tap" runs a subset; TAP_TESTS="./025_hooks.pl"
# picks TAP scripts.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PG_BIN=/usr/lib/postgresql/15/bin
PGXS_SRC=$(dirname "$("$PG_BIN/pg_config" --pgxs)")/..
BUILD="$ROOT/build"
SUITES=${SUITES:-"lint unit regress isolation tap clients"}
PRELOAD_OPTS=(-o "shared_preload_libraries=matviews" -o "max_worker_processes=32"
              -o "matviews.launcher_naptime=200ms")
mkdir -p "$BUILD"

passed=0
failed=0
failures=()

record() {
    # record SUITE PASSED FAILED: adds a suite's counts to the totals.
    passed=$((passed + $2))
    failed=$((failed + $3))
    [ "$3" -gt 0 ] && failures+=("$1")
    echo "== $1: $2 passed, $3 failed"
}

as_unprivileged() {
    # Runs a command as `postgres` when we are root (the server refuses root), else as ourselves.
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- env PATH="$PATH" "$@"
    else
        "$@"
    fi
}

suite_lint() {
    # Rules that keep the C++/PostgreSQL boundary in one place.
    local p=0 f=0
    local offenders
    offenders=$(grep -rlE --include='*.cpp' --include='*.hpp' \
                '\b(ereport|elog) *\(|\bPG_(TRY|CATCH|RE_THROW|FINALLY|END_TRY)\b|\berrcode *\(' src \
                | grep -v '^src/boundary/' || true)
    if [ -z "$offenders" ]; then p=$((p + 1)); else f=$((f + 1)); echo "error machinery outside src/boundary: $offenders"; fi
    offenders=$(grep -rlE --include='*.cpp' --include='*.hpp' '#include "postgres.h"' src \
                | grep -v '^src/boundary/pg.hpp$' || true)
    if [ -z "$offenders" ]; then p=$((p + 1)); else f=$((f + 1)); echo "postgres.h included outside pg.hpp: $offenders"; fi
    offenders=$(grep -rlE --include='*.cpp' --include='*.hpp' 'catch *\( *\.\.\. *\) *\{ *\}' src || true)
    if [ -z "$offenders" ]; then p=$((p + 1)); else f=$((f + 1)); echo "empty catch (...) in: $offenders"; fi
    # Every statement goes through the catalog gateway (src/catalog) over the pinned SPI session
    # (src/boundary): no SPI call, and no statement run, anywhere else.
    offenders=$(grep -rnE --include='*.cpp' --include='*.hpp' \
                '\bSPI_[a-z]|\.exec\(|\.scalar\(|exec_owner_code' src \
                | grep -vE '^src/(boundary|catalog)/' || true)
    if [ -z "$offenders" ]; then p=$((p + 1)); else f=$((f + 1)); echo "SPI outside the catalog gateway: $offenders"; fi
    # Layers point down: the catalog layer knows nothing of the worker, the operations or the API.
    offenders=$(grep -rnE --include='*.cpp' --include='*.hpp' '#include "(worker|ops)/|#include "api' \
                src/catalog src/boundary src/core || true)
    if [ -z "$offenders" ]; then p=$((p + 1)); else f=$((f + 1)); echo "layering: $offenders"; fi
    # A released version's SQL is frozen: every extension script that existed at a release's
    # commit (extension/releases.txt) is unchanged, so a change to the SQL objects goes into a new
    # update script; and the default version can be installed or reached by an update script.
    if git rev-parse --git-dir >/dev/null 2>&1; then
        offenders=""
        while read -r version commit; do
            [ -n "$version" ] || continue
            for script in $(git ls-tree --name-only "$commit" extension/ | grep -E '\.sql$'); do
                git diff --quiet "$commit" -- "$script" 2>/dev/null || offenders="$offenders $script ($version)"
            done
        done <extension/releases.txt
        local default
        default=$(sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" matviews.control)
        if [ ! -e extension/matviews--"$default".sql ] &&
           ! ls extension/matviews--*--"$default".sql >/dev/null 2>&1; then
            offenders="$offenders (no install or update script for default_version $default)"
        fi
        grep -q "kSchemaVersion = \"$default\"" src/catalog/store.hpp ||
            offenders="$offenders (kSchemaVersion in src/catalog/store.hpp is not default_version $default)"
        if [ -z "$offenders" ]; then p=$((p + 1)); else f=$((f + 1)); echo "released SQL changed; add an update script instead:$offenders"; fi
    fi
    # The code is clang-formatted (.clang-format), when the machine has clang-format.
    if command -v clang-format >/dev/null; then
        if make -s check-format >/dev/null 2>&1; then p=$((p + 1)); else f=$((f + 1)); echo "not clang-formatted: run make format"; fi
    fi
    record lint $p $f
}

suite_unit() {
    # CMake configure + build of the unit tests, then CTest.
    local log="$BUILD/unit.log"
    if ! { cmake -S . -B "$BUILD/cmake" -DCMAKE_BUILD_TYPE=Debug >"$log" 2>&1 &&
           cmake --build "$BUILD/cmake" --target matviews_unit_tests -j2 >>"$log" 2>&1; }; then
        cat "$log"
        record unit 0 1
        return
    fi
    (cd "$BUILD/cmake" && ctest --output-on-failure) >"$log" 2>&1
    tail -n 4 "$log"
    local total nfail
    total=$(sed -nE 's/.*tests failed out of ([0-9]+).*/\1/p' "$log" | tail -n1)
    nfail=$(sed -nE 's/.*, ([0-9]+) tests failed out of.*/\1/p' "$log" | tail -n1)
    if [ -z "$total" ]; then cat "$log"; record unit 0 1; return; fi
    [ "$nfail" -gt 0 ] && grep -E "Failed|\*\*\*" "$log"
    record unit $((total - nfail)) "$nfail"
}

suite_regress() {
    # pg_regress through PGXS installcheck, in a cluster with the worker preloaded.
    local log="$BUILD/regress.log"
    rm -rf results regression.diffs regression.out
    pg_virtualenv -t "${PRELOAD_OPTS[@]}" \
        make --no-print-directory installcheck PG_CONFIG="$PG_BIN/pg_config" >"$log" 2>&1
    local p f
    p=$(grep -cE '^(test | +|ok )?.* \.\.\. ok' "$log" || true)
    f=$(grep -cE '\.\.\. FAILED' "$log" || true)
    grep -E '\.\.\. (ok|FAILED)' "$log" | sed 's/^/  /'
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then cat "$log"; f=1; fi
    [ -f regression.diffs ] && [ "$f" -gt 0 ] && head -n 200 regression.diffs
    record regress "$p" "$f"
}

suite_isolation() {
    # pg_isolation_regress over every spec in test/isolation/specs.
    local log="$BUILD/isolation.log"
    local specs
    specs=$(cd test/isolation/specs && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
    if [ -z "$specs" ]; then record isolation 0 0; return; fi
    rm -rf "$BUILD/isolation"
    mkdir -p "$BUILD/isolation"
    # shellcheck disable=SC2086
    pg_virtualenv -t "${PRELOAD_OPTS[@]}" \
        "$PGXS_SRC/test/isolation/pg_isolation_regress" --inputdir=test/isolation \
        --outputdir="$BUILD/isolation" --bindir="$PG_BIN" --load-extension=matviews \
        --dbname=isolation_regression $specs >"$log" 2>&1
    local p f
    p=$(grep -cE '\.\.\. ok' "$log" || true)
    f=$(grep -cE '\.\.\. FAILED' "$log" || true)
    grep -E '\.\.\. (ok|FAILED)' "$log" | sed 's/^/  /'
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then cat "$log"; f=1; fi
    [ "$f" -gt 0 ] && [ -f "$BUILD/isolation/regression.diffs" ] && head -n 200 "$BUILD/isolation/regression.diffs"
    record isolation "$p" "$f"
}

suite_tap() {
    # prove with PostgreSQL::Test::Cluster; each assertion counts.
    local log="$BUILD/tap.log"
    local dir
    dir=$(mktemp -d /tmp/matviews-tap.XXXXXX)
    cp -r test/tap "$dir/"
    # Every released version's extension scripts, from the repository's history (030_upgrade.pl):
    # releases/<version>/ holds the scripts as they were at that release's commit.
    mkdir -p "$dir/tap/releases"
    cp extension/releases.txt "$dir/tap/releases/"
    while read -r version commit; do
        [ -n "$version" ] || continue
        mkdir -p "$dir/tap/releases/$version"
        for script in $(git ls-tree --name-only "$commit" extension/ | grep -E '\.sql$'); do
            git show "$commit:$script" >"$dir/tap/releases/$version/$(basename "$script")"
        done
    done <extension/releases.txt
    chmod -R a+rwX "$dir"
    chmod a+x "$dir"
    (cd "$dir/tap" && as_unprivileged env PATH="$PG_BIN:$PATH" TESTDIR="$dir/tap" \
        PG_REGRESS="$PGXS_SRC/test/regress/pg_regress" \
        prove -v -I "$PGXS_SRC/test/perl" ${TAP_TESTS:-./*.pl}) >"$log" 2>&1
    local rc=$?
    grep -E '^(ok|not ok) ' "$log" | sed 's/^/  /'
    local p f
    p=$(grep -cE '^ok ' "$log" || true)
    # A TODO test that fails is an expected failure in TAP: not counted as failed.
    f=$(grep -E '^not ok ' "$log" | grep -vc '# TODO' || true)
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$f" -gt 0 ]; then
        tail -n 60 "$log"
        for l in "$dir"/tap/tmp_check/log/*.log; do
            [ -f "$l" ] && { echo "--- $l"; tail -n 40 "$l"; }
        done
    fi
    rm -rf "$dir"
    record tap "$p" "$f"
}

suite_clients() {
    # Each example prints TAP-style lines; every line counts.
    local log="$BUILD/clients.log"
    pg_virtualenv -t "${PRELOAD_OPTS[@]}" bash -c \
        'export PGDATABASE=postgres; /usr/bin/python3 examples/python_client.py; r1=$?;
         ruby examples/rails_client.rb; r2=$?; exit $((r1 + r2))' >"$log" 2>&1
    local rc=$?
    grep -E '^(ok|not ok) ' "$log" | sed 's/^/  /'
    local p f
    p=$(grep -cE '^ok ' "$log" || true)
    f=$(grep -cE '^not ok ' "$log" || true)
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then cat "$log"; f=1; fi
    record clients "$p" "$f"
}

for s in $SUITES; do
    "suite_$s"
done

[ ${#failures[@]} -gt 0 ] && echo "failed suites: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
