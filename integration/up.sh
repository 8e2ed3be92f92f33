#!/usr/bin/env bash
# Quick start: build Switchyard (release), start a throw-away local PostgreSQL
# 15 primary + one streaming replica, put Switchyard in front of them and print
# how to connect.
#
# Usage: integration/up.sh [--detach]
#
#   (default)  stay in the foreground with Switchyard's log on the terminal;
#              Ctrl-C / SIGTERM stops Switchyard and the cluster and removes
#              the temp dir.
#   --detach   leave everything running in the background, record it in the
#              state file and return; stop it with integration/down.sh.
#
# Environment:
#   SWITCHYARD_UP_DIR           directory for the cluster and config (default:
#                               a new mktemp dir under /tmp); must be empty,
#                               and is removed on shutdown
#   SWITCHYARD_PORT             Switchyard listen port (default 6432)
#   SWITCHYARD_UP_PRIMARY_PORT  primary port (default 25432)
#   SWITCHYARD_UP_REPLICA_PORT  replica port (default 25433)
#   SWITCHYARD_UP_STATE         state file for --detach (default /tmp/switchyard-up.state)
#   SWITCHYARD_BIN              use this binary instead of building
#   PG_FSYNC                    fsync of the cluster, on|off (default on)
#   RUST_LOG                    Switchyard log filter (default info)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=lib/cluster.sh
. "$here/lib/cluster.sh"
CL_LOG_TAG=up

detach=0
for arg in "$@"; do
  case $arg in
    --detach | -d) detach=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "up.sh: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

sy_port=${SWITCHYARD_PORT:-6432}
pg_port=${SWITCHYARD_UP_PRIMARY_PORT:-25432}
replica_port=${SWITCHYARD_UP_REPLICA_PORT:-25433}
state_file=${SWITCHYARD_UP_STATE:-/tmp/switchyard-up.state}
t_start=$SECONDS

if [[ -e $state_file ]]; then
  echo "up.sh: $state_file exists: an earlier 'up.sh --detach' may still be running." >&2
  echo "       Stop it with $here/down.sh (or remove the file if it is stale)." >&2
  exit 1
fi
if port_open 127.0.0.1 "$sy_port"; then
  echo "up.sh: port $sy_port on 127.0.0.1 is already in use (set SWITCHYARD_PORT)" >&2
  exit 1
fi

dir=""
sy_pid=""
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  if [[ -n $sy_pid ]]; then
    cl_log "stopping switchyard (pid $sy_pid)"
    switchyard_stop "$sy_pid" 10
  fi
  if [[ -n $dir ]]; then
    cl_log "stopping the cluster and removing $dir"
    cluster_down "$dir"
    # cluster_up may have failed before claiming the dir: drop it if empty.
    [[ -d $dir ]] && rmdir "$dir" 2>/dev/null
  fi
  cl_log "done (ran $((SECONDS - t_start))s)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bin=$(switchyard_build "$repo")

if [[ -n ${SWITCHYARD_UP_DIR:-} ]]; then
  dir=$SWITCHYARD_UP_DIR
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
else
  dir=$(mktemp -d /tmp/switchyard-up.XXXXXX)
fi

cluster_up "$dir" "$pg_port" "$replica_port"

config=$dir/switchyard.toml
write_switchyard_config "$config" "127.0.0.1:$sy_port" 20 transaction \
  "127.0.0.1:$pg_port" "127.0.0.1:$replica_port"
"$bin" --config "$config" --check >&2

export RUST_LOG=${RUST_LOG:-info}
if ((detach)); then
  sy_log=$dir/switchyard.log
  # Own session: a later Ctrl-C in this terminal does not reach it.
  setsid "$bin" --config "$config" </dev/null >>"$sy_log" 2>&1 &
  sy_pid=$!
else
  "$bin" --config "$config" </dev/null &
  sy_pid=$!
fi
wait_port 127.0.0.1 "$sy_port" 30 "$sy_pid"

connect="PGPASSWORD=app_pw psql -h 127.0.0.1 -p $sy_port -U app app"
cat <<EOF

================================================================================
Switchyard is listening on 127.0.0.1:$sy_port (pid $sy_pid, up in $((SECONDS - t_start))s)
  primary  127.0.0.1:$pg_port   replica 127.0.0.1:$replica_port   (PostgreSQL 15)
  dir      $dir
  config   $config

Connect:
  $connect
Directly to the servers (bypassing Switchyard):
  PGPASSWORD=app_pw psql -h 127.0.0.1 -p $pg_port -U app app
  PGPASSWORD=app_pw psql -h 127.0.0.1 -p $replica_port -U app app
EOF

if ((detach)); then
  {
    echo "dir=$dir"
    echo "switchyard_pid=$sy_pid"
    echo "switchyard_bin=$bin"
    echo "switchyard_port=$sy_port"
    echo "primary_port=$pg_port"
    echo "replica_port=$replica_port"
  } >"$state_file"
  trap - EXIT INT TERM HUP
  cat <<EOF
  log      $dir/switchyard.log (server logs: $dir/*.log)
  state    $state_file

Running in the background. Stop everything with:
  $here/down.sh
================================================================================
EOF
  exit 0
fi

cat <<EOF

Press Ctrl-C to stop Switchyard and the cluster (and remove $dir).
================================================================================

EOF
rc=0
wait "$sy_pid" || rc=$?
cl_log "switchyard exited with status $rc"
sy_pid=""
exit "$rc"
