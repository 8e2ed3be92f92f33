#!/usr/bin/env bash
# The compose stack's one-shot benchmark: initialise pgbench's tables and run a TPC-B-like
# workload (writes: the primary) and a select-only one (reads: the replica), all through
# Switchyard; the summaries go to the log (docker compose logs pgbench).
set -euo pipefail
export PGHOST=switchyard PGPORT=6432 PGUSER=app PGDATABASE=app
seconds="${PGBENCH_SECONDS:-10}"
until pg_isready -q; do sleep 1; done
echo "pgbench: initialising (scale 1) through Switchyard"
pgbench -i -s 1 -q
echo "pgbench: TPC-B-like, 8 clients, ${seconds} s, through Switchyard"
pgbench -c 8 -j 2 -T "$seconds" -P 5
echo "pgbench: select-only, 8 clients, ${seconds} s, through Switchyard"
pgbench -S -c 8 -j 2 -T "$seconds" -P 5
echo "pgbench: done"
