#!/usr/bin/env bash
# Instructions per transaction in Switchyard's user space, with callgrind: a
# deterministic figure (unlike TPS or CPU time on a shared machine) for
# comparing two builds of the hot path.
#
#   1. start a throw-away PostgreSQL primary and load it (pgbench -i -s 1);
#   2. for each binary given, run it under `valgrind --tool=callgrind`
#      (transaction mode, pool 20, SCRAM), put $TRANSACTIONS select-only
#      transactions through it with $CLIENTS pgbench clients (-S -M simple),
#      stop it, and print instructions (Ir) per transaction: the whole run
#      (startup, logins and shutdown included) divided by the transactions.
#
# Usage: integration/bench/callgrind.sh BINARY [BINARY...]
#
# Environment:
#   TRANSACTIONS   transactions per binary (default 20000)
#   CLIENTS        pgbench clients (default 8)
#   CG_PORT        PostgreSQL port (default 25492); Switchyard uses CG_PORT+1
#   CG_KEEP_DIR    copy the callgrind outputs here before cleanup
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../lib/cluster.sh
. "$here/../lib/cluster.sh"
CL_LOG_TAG=callgrind

[[ $# -ge 1 ]] || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
transactions=${TRANSACTIONS:-20000}
clients=${CLIENTS:-8}
pg_port=${CG_PORT:-25492}
sy_port=$((pg_port + 1))

dir=$(mktemp -d /tmp/switchyard-callgrind.XXXXXX)
sy_pid=""
cleanup() {
  set +e
  [[ -n $sy_pid ]] && switchyard_stop "$sy_pid" 60
  [[ -n ${CG_KEEP_DIR:-} ]] && mkdir -p "$CG_KEEP_DIR" && cp "$dir"/callgrind.* "$CG_KEEP_DIR"/ 2>/dev/null
  cluster_down "$dir/pg"
  rm -rf "$dir"
}
trap cleanup EXIT

cluster_up "$dir/pg" "$pg_port"
for v in "${_CL_SCRUB_ENV[@]}"; do unset "$v"; done
export PGPASSWORD=$CL_APP_PASSWORD PGSSLMODE=disable
"$PG_BIN/pgbench" -i -s 1 -q -h 127.0.0.1 -p "$pg_port" -U "$CL_APP_USER" "$CL_APP_DB" >/dev/null 2>&1
write_switchyard_config "$dir/switchyard.toml" "127.0.0.1:$sy_port" 20 transaction "127.0.0.1:$pg_port"

n=0
for bin in "$@"; do
  n=$((n + 1))
  out=$dir/callgrind.$n.out
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" \
    --config "$dir/switchyard.toml" >"$dir/sy.$n.log" 2>&1 &
  sy_pid=$!
  wait_port 127.0.0.1 "$sy_port" 120 "$sy_pid"
  per_client=$((transactions / clients))
  "$PG_BIN/pgbench" -n -S -c "$clients" -j 2 -t "$per_client" -h 127.0.0.1 -p "$sy_port" \
    -U "$CL_APP_USER" "$CL_APP_DB" >"$dir/pgbench.$n.out" 2>&1
  done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/pgbench.$n.out")
  switchyard_stop "$sy_pid" 120
  sy_pid=""
  ir=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$out" | head -n 1)
  [[ -z $ir ]] && ir=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$out" | head -n 1)
  if [[ -z $done_tx || $done_tx == 0 || -z $ir ]]; then
    echo "$bin: no result (pgbench: $(tail -n 3 "$dir/pgbench.$n.out" | tr '\n' ' '))"
    continue
  fi
  echo "$bin: $ir instructions for $done_tx transactions = $((ir / done_tx)) per transaction"
done
