#!/usr/bin/env bash
# Instructions per transaction in Switchyard's user space, with callgrind: a
# deterministic figure (unlike TPS or CPU time on a shared machine) for
# comparing two builds of the hot path.
#
#   1. start a throw-away PostgreSQL primary and load it (pgbench -i -s 1);
#   2. for each binary given, run it twice under `valgrind --tool=callgrind`
#      (transaction mode, pool 20, SCRAM), putting $TRANSACTIONS and then
#      3 x $TRANSACTIONS transactions (select-only unless $WORKLOAD says) through it with $CLIENTS
#      pgbench clients (-S -M simple), and print the instructions (Ir) per
#      transaction: the difference of the two runs' totals divided by the
#      difference in transactions, so that startup (the SCRAM key derivation
#      alone is ~0.5 G instructions), logins and shutdown cancel out.
#
# Usage: integration/bench/callgrind.sh BINARY [BINARY...]
#
# Environment:
#   TRANSACTIONS   transactions per binary (default 20000)
#   CLIENTS        pgbench clients (default 8)
#   WORKLOAD       "select" (-S, the default) or "tpcb" (pgbench's TPC-B-like script)
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
case ${WORKLOAD:-select} in
  select) workload_flags=(-S) ;;
  tpcb) workload_flags=() ;;
  *) echo "callgrind.sh: WORKLOAD must be select or tpcb" >&2; exit 2 ;;
esac
pg_port=${CG_PORT:-25492}
sy_port=$((pg_port + 1))

dir=$(mktemp -d /tmp/switchyard-callgrind.XXXXXX)
chmod 711 "$dir"
sy_pid=""
cleanup() {
  set +e
  [[ -n $sy_pid ]] && switchyard_stop "$sy_pid" 60
  [[ -n ${CG_KEEP_DIR:-} ]] && mkdir -p "$CG_KEEP_DIR" && cp "$dir"/callgrind.* "$CG_KEEP_DIR"/ 2>/dev/null
  cluster_down "$dir/pg"
  rm -rf "$dir"
}
trap cleanup EXIT

bench_primary_up "$dir/pg" "$pg_port" 1
write_switchyard_config "$dir/switchyard.toml" "127.0.0.1:$sy_port" 20 transaction "127.0.0.1:$pg_port"

# run_once BIN N TRANSACTIONS: prints "IR DONE" (total instructions, transactions done).
run_once() {
  local bin=$1 n=$2 tx=$3 out=$dir/callgrind.$2.out
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" \
    --config "$dir/switchyard.toml" >"$dir/sy.$n.log" 2>&1 &
  sy_pid=$!
  wait_port 127.0.0.1 "$sy_port" 120 "$sy_pid"
  "$PG_BIN/pgbench" -n "${workload_flags[@]}" -c "$clients" -j 2 -t "$((tx / clients))" -h 127.0.0.1 \
    -p "$sy_port" -U "$CL_APP_USER" "$CL_APP_DB" >"$dir/pgbench.$n.out" 2>&1
  switchyard_stop "$sy_pid" 120
  sy_pid=""
  local ir done_tx
  ir=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$out" | head -n 1)
  [[ -z $ir ]] && ir=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$out" | head -n 1)
  done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/pgbench.$n.out")
  echo "${ir:-0} ${done_tx:-0}"
}

n=0
for bin in "$@"; do
  n=$((n + 1))
  read -r ir1 tx1 < <(run_once "$bin" "$n.a" "$transactions")
  read -r ir3 tx3 < <(run_once "$bin" "$n.b" "$((3 * transactions))")
  if ((tx1 == 0 || tx3 <= tx1 || ir1 == 0 || ir3 == 0)); then
    echo "$bin: no result (transactions $tx1 / $tx3; see $dir/pgbench.$n.*.out)"
    continue
  fi
  echo "$bin: $(((ir3 - ir1) / (tx3 - tx1))) instructions per transaction" \
    "($ir1 for $tx1, $ir3 for $tx3 transactions)"
done
