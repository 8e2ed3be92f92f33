#!/usr/bin/env bash
# Repro: pgbench -M prepared (TPC-B) with more clients than pool_size on one pgbench
# thread deadlocks until checkout_timeout_ms, then aborts ("pool is exhausted", then
# 'prepared statement "P_0" does not exist').
#
# pgbench prepares each command with a synchronous PQprepare (Parse + Sync) the first time
# a client runs it. BEGIN is prepared outside a transaction, so Switchyard checks out a
# server connection for that Parse; when the other clients of the same pgbench thread hold
# every pooled connection inside their transactions, the thread blocks in PQprepare and
# never serves them. (With -j equal to -c it runs fine.)
#
# Run: DRIVERS_POOL_SIZE=5 integration/drivers/run.sh --exec \
#        integration/drivers/repro/pgbench_prepared_tpcb.sh
# Exit status 1 when pgbench fails.
set -uo pipefail
B=${SWITCHYARD_PG_BIN:-/usr/lib/postgresql/15/bin}
export PGPASSWORD=app_pw
"$B/pgbench" -h 127.0.0.1 -p "$SUITE_PRIMARY_PORT" -U app -i -s 2 -q app >/dev/null 2>&1 || exit 2
out=$("$B/pgbench" -h 127.0.0.1 -p "$SUITE_PORT" -U app -M prepared -c 10 -j 1 -T 10 -n app 2>&1)
rc=$?
echo "$out" | grep -E 'error|processed|^tps' | grep -v '^HINT' | head -8
if ((rc != 0)); then
  echo "BUG: pgbench -M prepared -c 10 -j 1 exited with status $rc"
  exit 1
fi
echo "OK"
