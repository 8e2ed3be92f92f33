#!/usr/bin/env bash
# pgbench smoke test through Switchyard (the spine's "done when"):
#
#   1. start a throw-away primary + streaming replica and Switchyard in front
#      of them (transaction pooling, pool_size 10);
#   2. through Switchyard: pgbench -i -s 2, then the TPC-B-like workload and
#      the select-only workload (-S), each with 50 clients for $DURATION s;
#   3. the same two workloads again with each query protocol that uses the
#      extended protocol: -M prepared (named prepared statements, which
#      Switchyard maps onto shared server-side statements) and -M extended
#      (unnamed statements), i.e. -M prepared -S, -M prepared, -M extended -S,
#      -M extended;
#   4. fail when pgbench exits non-zero, reports failed transactions, or
#      processes no transactions; print a summary table (mode, workload, tps,
#      failed).
#
# With SMOKE_TLS=1 everything runs over TLS on both sides: the servers get
# ssl = on with a throw-away CA (openssl), Switchyard a [tls] table and
# server_tls = "verify-full", and pgbench connects with sslmode=verify-full;
# the run fails unless the server connections really use TLS.
#
# Everything (Switchyard, the cluster, the temp dir) is removed on exit, also
# on failure or Ctrl-C.
#
# Usage: integration/pgbench-smoke.sh
#
# Environment:
#   DURATION             seconds per workload (default 30)
#   CLIENTS              pgbench clients (default 50)
#   SMOKE_PRIMARY_PORT   primary port (default 25442)
#   SMOKE_REPLICA_PORT   replica port (default 25443)
#   SMOKE_PORT           Switchyard listen port (default 6442)
#   SMOKE_POOL_SIZE      Switchyard pool_size (default 10)
#   SMOKE_KEEP_LOG       copy Switchyard's log to this file before cleanup
#   SWITCHYARD_BIN       use this binary instead of `cargo build --release`
#   PG_FSYNC             fsync of the cluster, on|off (default on)
#   SMOKE_TLS            1: TLS on both sides (default 0)
#   RUST_LOG             Switchyard log filter (default info)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=lib/cluster.sh
. "$here/lib/cluster.sh"
CL_LOG_TAG=smoke

case ${1:-} in
  "") ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "pgbench-smoke.sh: unknown argument '$1' (try --help)" >&2
    exit 2
    ;;
esac

duration=${DURATION:-30}
clients=${CLIENTS:-50}
pg_port=${SMOKE_PRIMARY_PORT:-25442}
replica_port=${SMOKE_REPLICA_PORT:-25443}
sy_port=${SMOKE_PORT:-6442}
pool_size=${SMOKE_POOL_SIZE:-10}
t_start=$SECONDS

for v in duration clients; do
  if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
    echo "pgbench-smoke.sh: ${v^^} must be a positive integer, not '${!v}'" >&2
    exit 2
  fi
done
if port_open 127.0.0.1 "$sy_port"; then
  echo "pgbench-smoke.sh: port $sy_port on 127.0.0.1 is already in use (set SMOKE_PORT)" >&2
  exit 1
fi

PGBENCH=$PG_BIN/pgbench
PSQL=$PG_BIN/psql

dir=""
sy_pid=""
sy_log=""
bench_pid=""
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  cl_stop_pid "$bench_pid" "pgbench"
  cl_stop_switchyard "$sy_pid" "$sy_log" "$rc" "${SMOKE_KEEP_LOG:-}"
  if [[ -n $dir ]]; then
    cl_log "stopping the cluster and removing $dir"
    cluster_down "$dir"
    [[ -d $dir ]] && rmdir "$dir" 2>/dev/null
  fi
  cl_report "$rc" "$t_start"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bin=$(switchyard_build "$repo")

dir=$(mktemp -d /tmp/switchyard-smoke.XXXXXX)
cluster_up "$dir" "$pg_port" "$replica_port"

config=$dir/switchyard.toml
write_switchyard_config "$config" "127.0.0.1:$sy_port" "$pool_size" transaction \
  "127.0.0.1:$pg_port" "127.0.0.1:$replica_port"
tls=${SMOKE_TLS:-0}
if [[ $tls == 1 ]]; then
  switchyard_tls_both_sides "$config" "$dir/tls" \
    "$dir/primary:$pg_port" "$dir/replica1:$replica_port"
  echo 'mode = "require"' >>"$config"
  cl_log "TLS on both sides (server_tls = verify-full, [tls] mode = require)"
fi
sy_log=$dir/switchyard.log
RUST_LOG=${RUST_LOG:-info} "$bin" --config "$config" </dev/null >>"$sy_log" 2>&1 &
sy_pid=$!
wait_port 127.0.0.1 "$sy_port" 30 "$sy_pid"
cl_log "switchyard (pid $sy_pid) listening on 127.0.0.1:$sy_port, pool_size $pool_size, transaction mode"

# Client environment: only what we set.
for v in "${_CL_SCRUB_ENV[@]}"; do
  unset "$v"
done
export PGPASSWORD=$CL_APP_PASSWORD PGCONNECT_TIMEOUT=10 PGSSLMODE=disable
if [[ $tls == 1 ]]; then
  export PGSSLMODE=verify-full PGSSLROOTCERT=$dir/tls/ca.crt
fi
conn=(-h 127.0.0.1 -p "$sy_port" -U "$CL_APP_USER")

# Transaction counters of the app database on one server (direct connection).
xacts() {
  "$PSQL" -X -A -t -w -h 127.0.0.1 -p "$1" -U "$CL_APP_USER" -d "$CL_APP_DB" \
    -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()" \
    2>/dev/null || echo "?"
}

failures=()
summaries=()
table=()

# run_pgbench LABEL ARG...: runs pgbench through Switchyard, prints its output,
# records failures.
run_pgbench() {
  local label=$1
  shift
  local out=$dir/pgbench-$label.out rc=0 t0=$SECONDS
  local before_p before_r
  before_p=$(xacts "$pg_port")
  before_r=$(xacts "$replica_port")
  echo
  echo "=== [$label] pgbench ${*} (through switchyard 127.0.0.1:$sy_port)"
  # In the background so that a signal to this script runs the trap at once
  # (bash defers traps while a foreground command runs).
  "$PGBENCH" "${conn[@]}" "$@" "$CL_APP_DB" </dev/null >"$out" 2>&1 &
  bench_pid=$!
  wait "$bench_pid" || rc=$?
  bench_pid=""
  cat "$out"
  echo "=== [$label] pgbench exit status $rc ($((SECONDS - t0))s)"
  if ((rc != 0)); then
    failures+=("$label: pgbench exited with status $rc")
  fi
  local after_p after_r
  after_p=$(xacts "$pg_port")
  after_r=$(xacts "$replica_port")
  if [[ $before_p$before_r$after_p$after_r =~ ^[0-9]+$ ]]; then
    # pg_stat_database is updated lazily (up to ~1 s late); indicative only.
    echo "=== [$label] server transactions during the run (pg_stat_database):" \
      "primary $((after_p - before_p)), replica $((after_r - before_r))"
  else
    echo "=== [$label] server transaction counters unavailable"
  fi
  [[ $label == init ]] && return 0

  local processed failed tps
  processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out" | head -n 1)
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | head -n 1)
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -n 1)
  if [[ -z $processed ]]; then
    failures+=("$label: no 'number of transactions actually processed' line in the pgbench output")
  elif ((processed == 0)); then
    failures+=("$label: 0 transactions processed")
  fi
  if [[ -z $failed ]]; then
    failures+=("$label: no 'number of failed transactions' line in the pgbench output")
  elif ((failed != 0)); then
    failures+=("$label: $failed failed transactions")
  fi
  if grep -q -i -E 'aborted|error' "$out"; then
    failures+=("$label: pgbench reported errors/aborted clients (see above)")
  fi
  summaries+=("$label: exit $rc, processed ${processed:-?}, failed ${failed:-?}, tps ${tps:-?}")

  # Query mode and workload, for the table.
  local mode=simple workload=tpcb a prev=""
  for a in "$@"; do
    [[ $prev == -M ]] && mode=$a
    [[ $a == -S ]] && workload=select-only
    prev=$a
  done
  local verdict=ok
  [[ $rc != 0 || -z $processed || $processed == 0 || -z $failed || $failed != 0 ]] && verdict=FAIL
  local tps_short=${tps:-?}
  [[ $tps_short =~ ^[0-9.]+$ ]] && tps_short=$(printf '%.1f' "$tps_short")
  table+=("$(printf '%-9s %-12s %10s %7s %10s  %s' "$mode" "$workload" "$tps_short" \
    "${failed:-?}" "${processed:-?}" "$verdict")")
}

if [[ $tls == 1 ]]; then
  server_ssl=$("$PSQL" -X -A -t -w "${conn[@]}" -d "$CL_APP_DB" \
    -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1) || true
  echo "=== TLS: the server connection behind a client of Switchyard uses TLS: $server_ssl"
  [[ $server_ssl == t ]] || failures+=("TLS: server connection not encrypted ($server_ssl)")
fi
run_pgbench init -i -s 2
if ((${#failures[@]} > 0)); then
  cl_log "pgbench -i failed; not running the workloads"
else
  run_pgbench tpcb -c "$clients" -j 2 -T "$duration"
  run_pgbench select-only -S -c "$clients" -j 2 -T "$duration"
  run_pgbench prepared-select-only -M prepared -S -c "$clients" -j 2 -T "$duration"
  run_pgbench prepared-tpcb -M prepared -c "$clients" -j 2 -T "$duration"
  run_pgbench extended-select-only -M extended -S -c "$clients" -j 2 -T "$duration"
  run_pgbench extended-tpcb -M extended -c "$clients" -j 2 -T "$duration"
fi

echo
echo "=== switchyard log: $(grep -c -E '\b(WARN|ERROR)\b' "$sy_log" || true) WARN/ERROR lines"
grep -E '\b(WARN|ERROR)\b' "$sy_log" | sed 's/\x1b\[[0-9;]*m//g' | head -n 20 || true

echo
echo "=== summary (duration ${duration}s, $clients clients, pool_size $pool_size, TLS $tls)"
for s in "${summaries[@]}"; do
  echo "  $s"
done
if ((${#table[@]} > 0)); then
  echo
  printf '  %-9s %-12s %10s %7s %10s  %s\n' mode workload tps failed processed result
  for r in "${table[@]}"; do
    echo "  $r"
  done
fi
if ((${#failures[@]} > 0)); then
  echo "=== FAILED:"
  for f in "${failures[@]}"; do
    echo "  $f"
  done
  exit 1
fi
echo "=== OK"
