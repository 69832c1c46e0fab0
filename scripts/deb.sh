#!/usr/bin/env bash
# The Debian package postgresql-15-matviews, built with Debian's tooling (debhelper and
# PostgreSQL's pgxs_loop addon, debian/), and its test.
#   build            builds the package from a copy of the tree (dpkg-buildpackage -b), so the
#                    working tree is neither cleaned nor written to; the .deb goes to build/deb/
#   test             builds it if needed, installs it (apt-get install ./…deb), runs the regress
#                    suite against the installed files in a throw-away cluster with the worker
#                    preloaded, then removes the package again
#   check-installed  only the regress run (autopkgtest, debian/tests/installcheck)
# scripts/setup.sh deb installs what building needs (make deb / make test-deb call it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/build/deb"
PACKAGE=postgresql-15-matviews

build() {
    local work version
    version=$(dpkg-parsechangelog -l debian/changelog -S Version)
    work=$(mktemp -d /tmp/matviews-deb.XXXXXX)
    # The tree as it is, without build outputs.
    tar --exclude=./build --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.d' \
        --exclude=./results --exclude=./bench/results -cf - . | (mkdir "$work/matviews-$version" && cd "$work/matviews-$version" && tar xf -)
    (cd "$work/matviews-$version" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
        tail -n 60 "$work/build.log"
        echo "deb: dpkg-buildpackage failed; the whole log is $work/build.log" >&2
        exit 1
    }
    mkdir -p "$OUT"
    rm -f "$OUT"/*.deb
    cp "$work"/*.deb "$OUT/"
    rm -rf "$work"
    ls -1 "$OUT"/*.deb
}

check_installed() {
    # The regress suite (pg_regress through PGXS installcheck) uses the installed extension.
    dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -q 'install ok installed' || {
        echo "deb: $PACKAGE is not installed" >&2
        exit 1
    }
    SUITES=regress bash scripts/run-tests.sh
}

run_test() {
    ls "$OUT"/"$PACKAGE"_*.deb >/dev/null 2>&1 || build
    local deb
    deb=$(ls -1 "$OUT"/"$PACKAGE"_*.deb | head -n 1)
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --reinstall "$deb" >/dev/null
    echo "deb: installed $(dpkg-query -W -f='${Package} ${Version}' "$PACKAGE")"
    # What the package ships, where PostgreSQL looks for it.
    local libdir sharedir missing=0
    libdir=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)
    sharedir=$(/usr/lib/postgresql/15/bin/pg_config --sharedir)
    for f in "$libdir/matviews.so" "$sharedir/extension/matviews.control" \
             $(sed -n 's/^DATA = //p' Makefile | tr ' ' '\n' | sed "s|^extension/|$sharedir/extension/|"); do
        if ! dpkg -S "$f" >/dev/null 2>&1; then echo "deb: $f is not in the package" >&2; missing=1; fi
    done
    local rc=0
    [ "$missing" -eq 0 ] || rc=1
    check_installed || rc=1
    apt-get remove -y -qq "$PACKAGE" >/dev/null
    echo "deb: removed $PACKAGE again (run make install to use a source build)"
    return $rc
}

case "${1:-}" in
    build) build ;;
    test) run_test ;;
    check-installed) check_installed ;;
    *) echo "usage: scripts/deb.sh build|test|check-installed" >&2; exit 2 ;;
esac
