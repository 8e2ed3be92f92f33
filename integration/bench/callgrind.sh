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
#   CACHE_SIM      1: also simulate the caches (--cache-sim=yes, this CPU's sizes
#                  unless CG_I1 gives the L1i as SIZE,WAYS,LINE) and print L1i and
#                  L1d misses per transaction: how much code and data a transaction
#                  runs through, beyond the pooler's own instruction count
#   HOT_LINES      1: also dump per-instruction costs (--dump-instr=yes) and print the
#                  64-byte code lines executed per transaction (hot_lines.py): the hot
#                  path's size, to hold against the 32 KiB L1 instruction cache
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
cache_flags=()
if [[ ${CACHE_SIM:-0} == 1 ]]; then
  cache_flags=(--cache-sim=yes)
  [[ -n ${CG_I1:-} ]] && cache_flags+=("--I1=$CG_I1")
fi
[[ ${HOT_LINES:-0} == 1 ]] && cache_flags+=(--dump-instr=yes)

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

# run_once BIN N TRANSACTIONS: prints "DONE IR I1MR D1MR D1MW" (transactions done, then
# the totals of instructions and, with CACHE_SIM=1, of L1i read and L1d read/write misses).
run_once() {
  local bin=$1 n=$2 tx=$3 out=$dir/callgrind.$2.out
  RUST_LOG=warn valgrind --tool=callgrind "${cache_flags[@]}" --callgrind-out-file="$out" "$bin" \
    --config "$dir/switchyard.toml" >"$dir/sy.$n.log" 2>&1 &
  sy_pid=$!
  wait_port 127.0.0.1 "$sy_port" 120 "$sy_pid"
  "$PG_BIN/pgbench" -n "${workload_flags[@]}" -c "$clients" -j 2 -t "$((tx / clients))" -h 127.0.0.1 \
    -p "$sy_port" -U "$CL_APP_USER" "$CL_APP_DB" >"$dir/pgbench.$n.out" 2>&1
  switchyard_stop "$sy_pid" 120
  sy_pid=""
  local done_tx
  done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/pgbench.$n.out")
  # The totals line, in the order of the events line (Ir first; I1mr, D1mr, D1mw with the
  # cache simulation).
  awk -v done="${done_tx:-0}" '
    /^events:/ { for (i = 2; i <= NF; i++) col[$i] = i }
    /^(summary|totals):/ && !seen { seen = 1; for (i = 2; i <= NF; i++) v[i] = $i }
    END { printf "%s %s %s %s %s\n", done, v[col["Ir"]] + 0, v[col["I1mr"]] + 0, v[col["D1mr"]] + 0, v[col["D1mw"]] + 0 }
  ' "$out"
}

n=0
for bin in "$@"; do
  n=$((n + 1))
  read -r tx1 ir1 i1 dr1 dw1 < <(run_once "$bin" "$n.a" "$transactions")
  read -r tx3 ir3 i3 dr3 dw3 < <(run_once "$bin" "$n.b" "$((3 * transactions))")
  if ((tx1 == 0 || tx3 <= tx1 || ir1 == 0 || ir3 == 0)); then
    echo "$bin: no result (transactions $tx1 / $tx3; see $dir/pgbench.$n.*.out)"
    continue
  fi
  echo "$bin: $(((ir3 - ir1) / (tx3 - tx1))) instructions per transaction" \
    "($ir1 for $tx1, $ir3 for $tx3 transactions)"
  if [[ ${CACHE_SIM:-0} == 1 ]]; then
    awk -v bin="$bin" -v t=$((tx3 - tx1)) -v i=$((i3 - i1)) -v r=$((dr3 - dr1)) -v w=$((dw3 - dw1)) \
      'BEGIN { printf "%s: %.1f L1i misses, %.1f L1d read and %.1f L1d write misses per transaction\n", bin, i / t, r / t, w / t }'
  fi
  if [[ ${HOT_LINES:-0} == 1 ]]; then
    python3 "$here/hot_lines.py" "$dir/callgrind.$n.a.out" "$dir/callgrind.$n.b.out" $((tx3 - tx1)) \
      | sed "s|^|$bin: |"
  fi
done
