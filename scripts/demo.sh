#!/usr/bin/env bash
# Starts a throw-away PostgreSQL 15 cluster with matviews preloaded and runs demo/demo.sql, the
# notification-preferences example of the seeds, then demo/remote.sql, the second-database
# scenario of seeds/000 (a users table mirrored through a foreign server), printing every response.
set -euo pipefail
cd "$(dirname "$0")/.."
exec pg_virtualenv -t -o shared_preload_libraries=matviews -o max_worker_processes=32 \
    sh -c 'psql -X -v ON_ERROR_STOP=1 -f demo/demo.sql && psql -X -v ON_ERROR_STOP=1 -f demo/remote.sql'
