#!/usr/bin/env bash
# A rolling upgrade under pgbench: two Switchyard processes share one listen port
# (so_reuseport = true) while pgbench connects anew for every transaction (-C,
# TPC-B-like, $CLIENTS clients for $DURATION s):
#
#   1. process A serves alone;
#   2. process B starts on the same address; the kernel spreads new connections
#      over both;
#   3. A gets SIGTERM: it stops accepting, lets its transactions finish and
#      exits; B serves alone to the end.
#
# Fails unless pgbench exits 0 with no failed transaction and no aborted client,
# A exits by itself (status 0) well before pgbench ends, and both A and B served
# clients. Linux resets connections still queued on a closed listener unless
# net.ipv4.tcp_migrate_req = 1 moves them to the other one: as root the script
# runs in a network namespace of its own (loopback only) with that setting, so
# the machine's settings are untouched; otherwise the setting must already be on.
#
# Usage: integration/rolling-upgrade.sh
# Environment: DURATION (16), CLIENTS (16, more than the pool of 10: logins go on
#   while every server is busy), SWITCHYARD_BIN (else cargo build --release),
#   UPGRADE_PRIMARY_PORT (25462), UPGRADE_PORT (6462).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; }

if [[ $(id -u) == 0 && -z ${UPGRADE_IN_NETNS:-} ]]; then
  exec unshare --net env UPGRADE_IN_NETNS=1 bash "$0" "$@"
fi
if [[ -n ${UPGRADE_IN_NETNS:-} ]]; then
  ip link set lo up
  sysctl -qw net.ipv4.tcp_migrate_req=1
fi
if [[ $(sysctl -n net.ipv4.tcp_migrate_req 2>/dev/null || echo 0) != 1 ]]; then
  echo "rolling-upgrade.sh: net.ipv4.tcp_migrate_req is not 1 (run as root, or set it)" >&2
  exit 2
fi

# shellcheck source=lib/cluster.sh
. "$here/lib/cluster.sh"
CL_LOG_TAG=upgrade

duration=${DURATION:-16}
clients=${CLIENTS:-16}
pg_port=${UPGRADE_PRIMARY_PORT:-25462}
sy_port=${UPGRADE_PORT:-6462}
t_start=$SECONDS
PGBENCH=$PG_BIN/pgbench

dir=""
pid_a=""
pid_b=""
bench_pid=""
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  cl_stop_pid "$bench_pid" "pgbench"
  cl_stop_switchyard "$pid_a" "$dir/a.log" "$rc" ""
  cl_stop_switchyard "$pid_b" "$dir/b.log" "$rc" ""
  if [[ -n $dir ]]; then
    cluster_down "$dir"
    rm -rf -- "$dir"
  fi
  cl_report "$rc" "$t_start"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bin=$(switchyard_build "$repo")
dir=$(mktemp -d /tmp/switchyard-upgrade.XXXXXX)
chmod 755 "$dir"
cluster_up "$dir" "$pg_port"
for v in "${_CL_SCRUB_ENV[@]}"; do unset "$v"; done
export PGPASSWORD=$CL_APP_PASSWORD PGCONNECT_TIMEOUT=10 PGSSLMODE=disable
"$PGBENCH" -i -s 1 -q -h 127.0.0.1 -p "$pg_port" -U "$CL_APP_USER" "$CL_APP_DB" >"$dir/init.out" 2>&1 ||
  { cat "$dir/init.out" >&2; exit 1; }

config=$dir/switchyard.toml
write_switchyard_config "$config" "127.0.0.1:$sy_port" 10 transaction "127.0.0.1:$pg_port"
sed -i '/^listen = /a so_reuseport = true\nshutdown_timeout_ms = 20000' "$config"

start() { # LOG -> pid in $started
  RUST_LOG=info "$bin" --config "$config" </dev/null >>"$1" 2>&1 &
  started=$!
}
start "$dir/a.log"
pid_a=$started
wait_port 127.0.0.1 "$sy_port" 30 "$pid_a"
cl_log "A (pid $pid_a) listening on 127.0.0.1:$sy_port"

"$PGBENCH" -n -C -c "$clients" -j 2 -T "$duration" -h 127.0.0.1 -p "$sy_port" -U "$CL_APP_USER" \
  "$CL_APP_DB" >"$dir/bench.out" 2>&1 &
bench_pid=$!
t_bench=$SECONDS
sleep $((duration / 4))
start "$dir/b.log"
pid_b=$started
for _ in $(seq 1 100); do
  grep -q "listening" "$dir/b.log" 2>/dev/null && break
  kill -0 "$pid_b" 2>/dev/null || { tail -n 20 "$dir/b.log" >&2; cl_die "B did not start"; }
  sleep 0.1
done
grep -q "listening" "$dir/b.log" || cl_die "B never said it was listening"
cl_log "B (pid $pid_b) listening beside A"
sleep $((duration / 8 + 1))

cl_log "SIGTERM to A"
kill -TERM "$pid_a"
t_term=$SECONDS
rc_a=0
wait "$pid_a" || rc_a=$?
a_took=$((SECONDS - t_term))
pid_a=""
cl_log "A exited with status $rc_a after ${a_took}s; pgbench goes on against B"
((rc_a == 0)) || cl_die "A exited with status $rc_a"
left=$((duration - (SECONDS - t_bench)))

rc_bench=0
wait "$bench_pid" || rc_bench=$?
bench_pid=""
cat "$dir/bench.out"
served() { grep -c "client disconnected" "$1" || true; }
n_a=$(served "$dir/a.log")
n_b=$(served "$dir/b.log")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$dir/bench.out")
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/bench.out")
cl_log "pgbench exit $rc_bench, processed ${processed:-?}, failed ${failed:-?}; clients served: A $n_a, B $n_b"
((rc_bench == 0)) || cl_die "pgbench failed (exit $rc_bench)"
[[ ${failed:-x} == 0 ]] || cl_die "failed transactions: ${failed:-unknown}"
grep -q "aborted" "$dir/bench.out" && cl_die "a pgbench client aborted"
((n_a > 0 && n_b > 0)) || cl_die "each process must have served clients (A $n_a, B $n_b)"
((left > 2)) || cl_die "A took too long to stop (${a_took}s): B served too little alone"
cl_log "rolling upgrade under pgbench: zero failed transactions"
