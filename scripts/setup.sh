#!/usr/bin/env bash
# Installs what matviews needs to build, test and demo on Debian 12: the PostgreSQL 15 server and
# headers, fmt, GoogleTest, the TAP test modules' dependencies and the client libraries the
# examples use. Plain shell on purpose: it runs before PGXS can be included. Idempotent: it only
# calls apt-get when a package is missing.
set -euo pipefail

PACKAGES=(
    postgresql-15 postgresql-server-dev-15 postgresql-common
    libfmt-dev libgtest-dev cmake g++ make
    libipc-run-perl
    python3 python3-psycopg2 ruby-activerecord ruby-pg
)

# `setup.sh deb`: also what building the Debian package needs (make deb, make test-deb).
if [ "${1:-}" = deb ]; then
    PACKAGES+=(debhelper dpkg-dev postgresql-server-dev-all)
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "setup: missing packages (${missing[*]}) and neither root nor sudo is available" >&2
    exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package creates and starts a default cluster; the tests use throw-away ones.
