#!/usr/bin/env bash
# What a pooler's user-space time and its code footprint cost the processes beside it.
# pgbench (-S -M simple, 32 clients, two threads) goes in turn through Switchyard and three
# PgBouncers: as it is, spinning $SPIN_NS before each send() (user time without a
# footprint), and running through $LINES distinct cache lines of code before each send()
# (a footprint without work), both through an LD_PRELOAD shim (footprint/shim.c, built
# here with cc). Each run records TPS and the CPU per 1,000 transactions of the pooler (and
# its user-space part), of all PostgreSQL processes and of pgbench. On a machine where they
# share the cores, a bigger footprint shows as PostgreSQL and pgbench needing more CPU per
# transaction (docs/benchmarks-lean.md, fourth round).
#
# Usage: integration/bench/footprint.sh
#
# Environment:
#   SWITCHYARD_BIN   use this binary instead of `cargo build --release`
#   ROUNDS           rounds (default 3); DURATION seconds per run (default 15)
#   SPIN_NS          the spin per send (default 600: about Switchyard's extra user time
#                    per transaction on the 2-core benchmark machine, over two sends)
#   LINES            64-byte code blocks run per send (default 300, at most 600)
#   FP_PORT          PostgreSQL port (default 25620); the poolers use the next four
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../lib/cluster.sh
. "$here/../lib/cluster.sh"
CL_LOG_TAG=footprint

rounds=${ROUNDS:-3}
duration=${DURATION:-15}
pg_port=${FP_PORT:-25620}
names=(Switchyard PgBouncer "PgBouncer + spin" "PgBouncer + code")
ports=($((pg_port + 1)) $((pg_port + 2)) $((pg_port + 3)) $((pg_port + 4)))
pids=("" "" "" "")
[[ -x $(command -v pgbouncer || echo /usr/sbin/pgbouncer) ]] || { echo "footprint.sh: pgbouncer is not installed (apt-get install pgbouncer)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "footprint.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
command -v cc >/dev/null || { echo "footprint.sh: needs a C compiler (cc) for the shim" >&2; exit 1; }
bin=$(switchyard_build "$here/../..")

dir=$(mktemp -d /tmp/switchyard-footprint.XXXXXX)
chmod 711 "$dir"
cleanup() {
  set +e
  [[ -n ${pids[0]} ]] && switchyard_stop "${pids[0]}" 30
  for p in "${pids[@]:1}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done
  sleep 1
  cluster_down "$dir/pg"
  rm -rf "$dir"
}
trap cleanup EXIT

cc -O2 -shared -fPIC -o "$dir/shim.so" "$here/footprint/shim.c" -ldl
chmod 755 "$dir/shim.so"
bench_primary_up "$dir/pg" "$pg_port" 1

# start_pgbouncer I VAR=VALUE...: PgBouncer number I (pool 20) with that environment.
start_pgbouncer() {
  local i=$1
  shift
  pgbouncer_up "$dir/pgb$i" "${ports[$i]}" "$pg_port" 20 "$@"
  pids[i]=$PGB_PID
  cl_log "${names[$i]} (pid ${pids[$i]}) on 127.0.0.1:${ports[$i]}:" \
    "$(tr '\0' '\n' <"/proc/${pids[$i]}/environ" | grep -E '^(LD_PRELOAD|SHIM_)' | tr '\n' ' ')"
}

write_switchyard_config "$dir/sy.toml" "127.0.0.1:${ports[0]}" 20 transaction "127.0.0.1:$pg_port"
sed -i '1a auth_method = "scram-sha-256"' "$dir/sy.toml"
RUST_LOG=warn "$bin" --config "$dir/sy.toml" </dev/null >"$dir/sy.log" 2>&1 &
pids[0]=$!
wait_port 127.0.0.1 "${ports[0]}" 30 "${pids[0]}"
start_pgbouncer 1
start_pgbouncer 2 LD_PRELOAD="$dir/shim.so" SHIM_SPIN_NS="${SPIN_NS:-600}"
start_pgbouncer 3 LD_PRELOAD="$dir/shim.so" SHIM_LINES="${LINES:-300}"

# Sum of utime + stime of all PostgreSQL processes, in ticks.
postgres_ticks() {
  local t=0 p
  for p in $(pgrep -x postgres); do t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done
  echo "$t"
}

# one_run I [SECONDS]: prints "TPS POOLER USER POSTGRES PGBENCH" (CPU in ms per 1,000 transactions).
one_run() {
  local i=$1 secs=${2:-$duration} c0 u0 g0 c1 u1 g1 tx tps
  c0=$(cpu_ticks "${pids[$i]}"); u0=$(user_ticks "${pids[$i]}"); g0=$(postgres_ticks)
  /usr/bin/time -f "%U %S" -o "$dir/time.out" "$PG_BIN/pgbench" -n -S -M simple -c 32 -j 2 \
    -T "$secs" -h 127.0.0.1 -p "${ports[$i]}" -U "$CL_APP_USER" "$CL_APP_DB" >"$dir/run.out" 2>&1 ||
    { cat "$dir/run.out" >&2; exit 1; }
  c1=$(cpu_ticks "${pids[$i]}"); u1=$(user_ticks "${pids[$i]}"); g1=$(postgres_ticks)
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$dir/run.out")
  tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/run.out")
  awk -v t="$tps" -v n="$tx" -v c=$((c1 - c0)) -v u=$((u1 - u0)) -v g=$((g1 - g0)) \
    -v hz="$(getconf CLK_TCK)" -v b="$(cat "$dir/time.out")" 'BEGIN { split(b, x); k = 1e6 / hz / n;
      printf "%.0f %.2f %.2f %.2f %.2f\n", t, c * k, u * k, g * k, (x[1] + x[2]) * 1e6 / n }'
}

printf '| round | target | TPS | pooler CPU (user) ms/1k tx | PostgreSQL ms/1k tx | pgbench ms/1k tx |\n'
printf '|---|---|---:|---:|---:|---:|\n'
for i in 0 1 2 3; do one_run "$i" 3 >/dev/null; done # warm-up
declare -A sum=()
for ((r = 1; r <= rounds; r++)); do
  for ((k = 0; k < 4; k++)); do
    i=$(((k + r - 1) % 4))
    read -r tps cpu usr pg gb <<<"$(one_run "$i")"
    printf '| %d | %s | %s | %s (%s) | %s | %s |\n' "$r" "${names[$i]}" "$tps" "$cpu" "$usr" "$pg" "$gb"
    sum[$i]=$(awk -v s="${sum[$i]:-0 0 0 0 0}" -v a="$tps $cpu $usr $pg $gb" 'BEGIN { split(s, x);
      split(a, y); for (j = 1; j <= 5; j++) printf "%f ", x[j] + y[j] }')
  done
done
for i in 0 1 2 3; do
  awk -v s="${sum[$i]}" -v n="$rounds" -v name="${names[$i]}" 'BEGIN { split(s, x);
    printf "| mean | %s | %.0f | %.2f (%.2f) | %.2f | %.2f |\n", name, x[1] / n, x[2] / n, x[3] / n, x[4] / n, x[5] / n }'
done
