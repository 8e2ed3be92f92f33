#!/usr/bin/env bash
# Two Switchyard builds or settings side by side: A and B each run as their own
# process (transaction mode, pool 20, SCRAM) in front of one throw-away
# PostgreSQL primary, and pgbench runs against them in turn (AB, BA, AB, ...),
# $ROUNDS rounds of $DURATION s per workload, recording TPS and each process's
# CPU time per 1,000 transactions (utime+stime from /proc/<pid>/stat), and its
# user-space part (utime) on its own: a change to Switchyard's code moves that
# part, while the kernel's share is most of the total and most of its noise. For a
# before/after of the hot path in one sitting; compare.sh is the report against
# PgBouncer.
#
# Usage: integration/bench/ab.sh BINARY_A [BINARY_B]   (B defaults to A)
#
# Environment:
#   EXTRA_A, EXTRA_B   top-level TOML lines added to A's / B's config
#                      (e.g. EXTRA_B='worker_threads = 2')
#   WORKLOADS          any of "select", "tpcb" (32 clients, $DURATION s) and
#                      "stream" (one client reading a 1,000,000-row result 10 times;
#                      CPU is then per result, not per 1,000) (default "select tpcb")
#   ROUNDS             rounds per workload (default 3)
#   DURATION           seconds per run (default 20)
#   CLIENTS            pgbench clients (default 32, two threads)
#   AB_PORT            PostgreSQL port (default 25560); A and B use the next two
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../lib/cluster.sh
. "$here/../lib/cluster.sh"
CL_LOG_TAG=ab

[[ $# -ge 1 ]] || { echo "usage: $0 BINARY_A [BINARY_B]" >&2; exit 2; }
bins=("$1" "${2:-$1}")
extras=("${EXTRA_A:-}" "${EXTRA_B:-}")
rounds=${ROUNDS:-3}
duration=${DURATION:-20}
clients=${CLIENTS:-32}
workloads=${WORKLOADS:-select tpcb}
pg_port=${AB_PORT:-25560}
ports=($((pg_port + 1)) $((pg_port + 2)))
pids=("" "")

dir=$(mktemp -d /tmp/switchyard-ab.XXXXXX)
chmod 711 "$dir"
cleanup() {
  set +e
  for p in "${pids[@]}"; do [[ -n $p ]] && switchyard_stop "$p" 30; done
  cluster_down "$dir/pg"
  rm -rf "$dir"
}
trap cleanup EXIT

bench_primary_up "$dir/pg" "$pg_port" 10

for i in 0 1; do
  conf=$dir/sy$i.toml
  write_switchyard_config "$conf" "127.0.0.1:${ports[$i]}" 20 transaction "127.0.0.1:$pg_port"
  sed -i "1a auth_method = \"scram-sha-256\"" "$conf"
  [[ -n ${extras[$i]} ]] && printf '%s\n' "${extras[$i]}" | sed -i "1r /dev/stdin" "$conf"
  RUST_LOG=warn "${bins[$i]}" --config "$conf" </dev/null >"$dir/sy$i.log" 2>&1 &
  pids[i]=$!
  wait_port 127.0.0.1 "${ports[$i]}" 30 "${pids[$i]}" || { cat "$dir/sy$i.log" >&2; exit 1; }
done

echo "SELECT g, repeat('x', 20) FROM generate_series(1, 1000000) g;" >"$dir/stream.sql"

# one_run I WORKLOAD [SECONDS]: prints "TPS CPU_MS USER_MS" (CPU, and its user-space
# part, per 1,000 transactions, or per result for "stream").
one_run() {
  local i=$1 secs=${3:-$duration} flags=() per=1000 before after ubefore uafter tps tx
  case $2 in
    select) flags=(-S -c "$clients" -j 2 -T "$secs") ;;
    tpcb) flags=(-c "$clients" -j 2 -T "$secs") ;;
    stream) flags=(-f "$dir/stream.sql" -c 1 -j 1 -t 10) per=1 ;;
    *) echo "ab.sh: unknown workload $2" >&2; exit 2 ;;
  esac
  before=$(cpu_ticks "${pids[$i]}")
  ubefore=$(user_ticks "${pids[$i]}")
  "$PG_BIN/pgbench" -n "${flags[@]}" -h 127.0.0.1 \
    -p "${ports[$i]}" -U "$CL_APP_USER" "$CL_APP_DB" >"$dir/run.out" 2>&1 ||
    { cat "$dir/run.out" >&2; exit 1; }
  after=$(cpu_ticks "${pids[$i]}")
  uafter=$(user_ticks "${pids[$i]}")
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/run.out")
  tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/run.out")
  awk -v t="$tps" -v c=$((after - before)) -v u=$((uafter - ubefore)) -v n="$tx" \
    -v hz="$(getconf CLK_TCK)" -v per=$per 'BEGIN { printf (t < 100 ? "%.3f" : "%.0f"), t;
      printf " %.2f %.2f\n", c * 1000 / hz * per / n, u * 1000 / hz * per / n }'
}

printf '| workload | round | A tps | B tps | A CPU ms/1k tx | B CPU ms/1k tx | A user | B user |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for w in $workloads; do
  [[ $w == stream ]] && printf '| stream: tps = results/s, CPU ms per result | | | | | | | |\n'
  # Warm-up, unmeasured.
  for i in 0 1; do one_run "$i" "$w" 3 >/dev/null; done
  sums="0 0 0 0 0 0"
  for ((r = 1; r <= rounds; r++)); do
    order=(0 1)
    ((r % 2 == 0)) && order=(1 0)
    declare -A res=()
    for i in "${order[@]}"; do res[$i]=$(one_run "$i" "$w"); done
    read -r ta ca ua <<<"${res[0]}"
    read -r tb cb ub <<<"${res[1]}"
    printf '| %s | %d | %s | %s | %s | %s | %s | %s |\n' "$w" "$r" "$ta" "$tb" "$ca" "$cb" "$ua" "$ub"
    sums=$(awk -v s="$sums" -v a="$ta $tb $ca $cb $ua $ub" 'BEGIN { split(s, x); split(a, y);
      for (k = 1; k <= 6; k++) printf "%f ", x[k] + y[k] }')
  done
  awk -v s="$sums" -v w="$w" 'BEGIN { split(s, x); printf "| %s | B/A | | %.3fx | | %.3fx | | %.3fx |\n",
    w, x[2] / x[1], x[4] / x[3], (x[5] > 0 ? x[6] / x[5] : 0) }'
done
for i in 0 1; do
  printf '%s peak RSS: %s\n' "$([[ $i == 0 ]] && echo A || echo B)" \
    "$(awk '/^VmHWM:/ {print $2, $3}' "/proc/${pids[$i]}/status")"
done
