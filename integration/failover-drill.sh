#!/usr/bin/env bash
# Failover drill through Switchyard (the shell twin of tests/failover.rs,
# promotion_drill_no_acknowledged_write_lost), measuring the outage:
#
#   1. build Switchyard (release) and examples/failover_drill.rs;
#   2. start a throw-away primary + 2 streaming replicas; replica1 is a
#      synchronous standby with synchronous_commit = remote_apply, so every
#      acknowledged commit is already visible on it; create table drill;
#   3. start Switchyard in front of the three (transaction mode, fast health
#      checks, short bans, clients wait for a primary);
#   4. run the example: through Switchyard one connection inserts n = 0,1,2,...
#      and another runs SELECT count(*) FROM drill, each every 20 ms; after 2 s
#      it kills the primary (pg_ctl stop -m immediate), 300 ms later promotes
#      replica1 (pg_ctl promote -w), and keeps going for 6 s; then it checks on
#      replica1 directly that every acknowledged write is there;
#   5. print the write outage (kill -> first write on the new primary), the
#      write recovery after the promotion, the longest read outage, the
#      failures by SQLSTATE, and the acknowledged/lost writes.
#
# Fails (exit 1) when an acknowledged write is lost or writes did not resume
# within 3 s of the promotion. Everything (Switchyard, the cluster, the temp
# dir) is removed on exit, also on failure or Ctrl-C.
#
# Usage: integration/failover-drill.sh
#
# Environment:
#   INTERVAL_MS              health_check_interval_ms (default 100, min 100)
#   BAN_TIME_MS              ban_time_ms (default 500)
#   PRIMARY_WAIT_TIMEOUT_MS  primary_wait_timeout_ms (default 10000)
#   DRILL_POOL_SIZE          pool_size (default 10)
#   DRILL_PRIMARY_PORT       primary port (default 25462)
#   DRILL_REPLICA1_PORT      replica1 port, the one promoted (default 25463)
#   DRILL_REPLICA2_PORT      replica2 port (default 25464)
#   DRILL_PORT               Switchyard listen port (default 6462)
#   DRILL_BEFORE_MS / DRILL_GAP_MS / DRILL_AFTER_MS
#                            load before the kill (2000), kill -> promote
#                            pause (300), load after the promotion (6000)
#   DRILL_KEEP_LOG           copy Switchyard's log to this file before cleanup
#   SWITCHYARD_BIN           use this binary instead of building it
#   DRILL_BIN                use this failover_drill example binary instead of
#                            building it
#   PG_FSYNC                 fsync of the cluster, on|off (default on)
#   RUST_LOG                 Switchyard log filter (default info;
#                            switchyard=debug logs every route)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=lib/cluster.sh
. "$here/lib/cluster.sh"
CL_LOG_TAG=drill

case ${1:-} in
  "") ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "failover-drill.sh: unknown argument '$1' (try --help)" >&2
    exit 2
    ;;
esac

interval_ms=${INTERVAL_MS:-100}
ban_time_ms=${BAN_TIME_MS:-500}
primary_wait_ms=${PRIMARY_WAIT_TIMEOUT_MS:-10000}
pool_size=${DRILL_POOL_SIZE:-10}
pg_port=${DRILL_PRIMARY_PORT:-25462}
r1_port=${DRILL_REPLICA1_PORT:-25463}
r2_port=${DRILL_REPLICA2_PORT:-25464}
sy_port=${DRILL_PORT:-6462}
before_ms=${DRILL_BEFORE_MS:-2000}
gap_ms=${DRILL_GAP_MS:-300}
after_ms=${DRILL_AFTER_MS:-6000}
t_start=$SECONDS

for v in interval_ms ban_time_ms primary_wait_ms pool_size before_ms gap_ms after_ms; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
    echo "failover-drill.sh: $v must be a non-negative integer, not '${!v}'" >&2
    exit 2
  fi
done
if ((interval_ms < 100)); then
  echo "failover-drill.sh: INTERVAL_MS must be at least 100 (Switchyard's minimum)" >&2
  exit 2
fi
if port_open 127.0.0.1 "$sy_port"; then
  echo "failover-drill.sh: port $sy_port on 127.0.0.1 is already in use (set DRILL_PORT)" >&2
  exit 1
fi

dir=""
sy_pid=""
sy_log=""
drill_pid=""
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  cl_stop_pid "$drill_pid" "the drill client"
  cl_stop_switchyard "$sy_pid" "$sy_log" "$rc" "${DRILL_KEEP_LOG:-}"
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

# --- 1. binaries
target=${CARGO_TARGET_DIR:-$repo/target}
[[ $target == /* ]] || target=$repo/$target
if [[ -n ${SWITCHYARD_BIN:-} ]]; then
  bin=$(switchyard_build "$repo")
  if [[ -z ${DRILL_BIN:-} ]]; then
    cl_log "cargo build --release --example failover_drill"
    (cd "$repo" && cargo build --release --example failover_drill) >&2
  fi
elif [[ -z ${DRILL_BIN:-} ]]; then
  # One cargo run for both.
  cl_log "cargo build --release --bin switchyard --example failover_drill"
  (cd "$repo" && cargo build --release --bin switchyard --example failover_drill) >&2
  bin=$target/release/switchyard
else
  bin=$(switchyard_build "$repo")
fi
drill_bin=${DRILL_BIN:-$target/release/examples/failover_drill}
for b in "$bin" "$drill_bin"; do
  [[ -x $b ]] || { cl_log "ERROR: $b is not an executable"; exit 1; }
done

# --- 2. cluster: replica1 synchronous with remote_apply
dir=$(mktemp -d /tmp/switchyard-drill.XXXXXX)
cluster_up "$dir" "$pg_port" "$r1_port" "$r2_port"

# psql as superuser through the primary's unix socket.
psql_primary() {
  _cl_psql_super "$dir/primary" "$pg_port" "$@"
}

# cluster_up sets cluster_name (the walreceiver's application_name) to the
# node name: that is what synchronous_standby_names matches.
psql_primary postgres \
  -c "ALTER SYSTEM SET synchronous_standby_names = 'replica1'" \
  -c "ALTER SYSTEM SET synchronous_commit = 'remote_apply'" \
  -c "SELECT pg_reload_conf()" >/dev/null
deadline=$((SECONDS + 15))
while :; do
  sync_state=$(psql_primary postgres \
    -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica1'") || sync_state=""
  commit_mode=$(psql_primary postgres -c "SHOW synchronous_commit") || commit_mode=""
  [[ $sync_state == sync && $commit_mode == remote_apply ]] && break
  if ((SECONDS >= deadline)); then
    cl_log "ERROR: replica1 is not a synchronous standby with remote_apply (sync_state '$sync_state', synchronous_commit '$commit_mode')"
    psql_primary postgres -c "SELECT application_name, state, sync_state FROM pg_stat_replication" >&2 || true
    exit 1
  fi
  sleep 0.2
done
cl_log "replica1 is a synchronous standby (synchronous_commit = remote_apply)"

psql_primary "$CL_APP_DB" -c "CREATE TABLE drill (n int PRIMARY KEY)" >/dev/null

# Both replicas replay up to the primary's current WAL position.
lsn=$(psql_primary postgres -c "SELECT pg_current_wal_lsn()")
for r in 1 2; do
  port_var=r${r}_port
  deadline=$((SECONDS + 30))
  until [[ $(_cl_psql_super "$dir/replica$r" "${!port_var}" postgres \
    -c "SELECT coalesce(pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn, false)" 2>/dev/null || true) == t ]]; do
    if ((SECONDS >= deadline)); then
      cl_log "ERROR: replica$r did not replay up to $lsn within 30s"
      exit 1
    fi
    sleep 0.1
  done
done
cl_log "replicas caught up to $lsn"

# --- 3. Switchyard
config=$dir/switchyard.toml
write_switchyard_config "$config" "127.0.0.1:$sy_port" "$pool_size" transaction \
  "127.0.0.1:$pg_port" "127.0.0.1:$r1_port" "127.0.0.1:$r2_port"
# [databases.app] is the last table of the file: these keys belong to it.
cat >>"$config" <<EOF
health_check_interval_ms = $interval_ms
ban_time_ms = $ban_time_ms
primary_wait_timeout_ms = $primary_wait_ms
EOF
sy_log=$dir/switchyard.log
RUST_LOG=${RUST_LOG:-info} "$bin" --config "$config" </dev/null >>"$sy_log" 2>&1 &
sy_pid=$!
wait_port 127.0.0.1 "$sy_port" 30 "$sy_pid"
cl_log "switchyard (pid $sy_pid) listening on 127.0.0.1:$sy_port: health_check_interval_ms=$interval_ms ban_time_ms=$ban_time_ms primary_wait_timeout_ms=$primary_wait_ms pool_size=$pool_size"

# Wait for the health checks to name the roles ("topology changed" lines:
# host=ADDR Primary|Replica ...). Indicative: the drill also runs a first
# read before it starts the clock.
strip_ansi() { sed 's/\x1b\[[0-9;]*m//g' "$@"; }
deadline=$((SECONDS + 20))
while :; do
  seen=0
  for hp in "$pg_port Primary" "$r1_port Replica" "$r2_port Replica"; do
    read -r p role <<<"$hp"
    if strip_ansi "$sy_log" | grep -q -E "topology changed.*host=127\.0\.0\.1:$p $role "; then
      seen=$((seen + 1))
    fi
  done
  ((seen == 3)) && break
  if ((SECONDS >= deadline)); then
    cl_log "WARNING: the switchyard log does not show the three roles after 20s; going on"
    break
  fi
  sleep 0.1
done

# --- 4. the drill
# sh -c commands for the example: pg_as_owner (runuser to postgres when root)
# from lib/cluster.sh, with every word single-quoted for sh.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
node_ctl_cmd() {
  local data=$1
  shift
  local cmd w
  # shellcheck disable=SC2016  # expanded by the inner bash
  cmd="bash -c $(shq '. "$1" && shift && pg_as_owner pg_ctl "$@"') drill $(shq "$here/lib/cluster.sh") -D $(shq "$data")"
  for w in "$@"; do
    cmd+=" $(shq "$w")"
  done
  printf '%s' "$cmd"
}
kill_cmd=$(node_ctl_cmd "$dir/primary/data" -m immediate -w stop)
promote_cmd=$(node_ctl_cmd "$dir/replica1/data" -w promote)

conn="host=127.0.0.1 user=$CL_APP_USER password=$CL_APP_PASSWORD dbname=$CL_APP_DB connect_timeout=10"
out=$dir/drill.out
cl_log "drill: load ${before_ms} ms, kill the primary ($pg_port), ${gap_ms} ms, promote replica1 ($r1_port), load ${after_ms} ms"
# In the background so that a signal to this script runs the trap at once.
"$drill_bin" \
  --proxy "$conn port=$sy_port" \
  --new-primary "$conn port=$r1_port" \
  --kill-cmd "$kill_cmd" \
  --promote-cmd "$promote_cmd" \
  --before-ms "$before_ms" --gap-ms "$gap_ms" --after-ms "$after_ms" \
  --label "health_check_interval_ms=$interval_ms" \
  </dev/null >"$out" &
drill_pid=$!
drill_rc=0
wait "$drill_pid" || drill_rc=$?
drill_pid=""

# --- 5. report
echo
echo "=== switchyard log during the drill (roles, bans, failed checkouts):"
strip_ansi "$sy_log" |
  grep -E 'topology changed|host banned|unusable|role changed|FENCED|primary to appear|WARN|ERROR' |
  head -n 60 || true
echo
echo "=== drill (through switchyard 127.0.0.1:$sy_port)"
cat "$out"
echo
cl_log "total run time $((SECONDS - t_start))s"
exit "$drill_rc"
