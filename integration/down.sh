#!/usr/bin/env bash
# Stops what `integration/up.sh --detach` started: Switchyard, the PostgreSQL
# primary and replica, and removes their temp dir and the state file.
#
# Usage: integration/down.sh
#
# Environment:
#   SWITCHYARD_UP_STATE  state file (default /tmp/switchyard-up.state)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/cluster.sh
. "$here/lib/cluster.sh"
CL_LOG_TAG=down

case ${1:-} in
  "") ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "down.sh: unknown argument '$1' (try --help)" >&2
    exit 2
    ;;
esac

state_file=${SWITCHYARD_UP_STATE:-/tmp/switchyard-up.state}
if [[ ! -f $state_file ]]; then
  echo "down.sh: no state file $state_file: nothing started with 'up.sh --detach' (or already stopped)" >&2
  exit 1
fi

dir="" sy_pid="" sy_bin=""
while IFS='=' read -r key value; do
  case $key in
    dir) dir=$value ;;
    switchyard_pid) sy_pid=$value ;;
    switchyard_bin) sy_bin=$value ;;
  esac
done <"$state_file"

# Only signal the pid if it still is the switchyard we started.
if [[ $sy_pid =~ ^[0-9]+$ ]] && kill -0 "$sy_pid" 2>/dev/null; then
  argv0=$(tr '\0' '\n' <"/proc/$sy_pid/cmdline" 2>/dev/null | head -n 1) || argv0=""
  if [[ $argv0 == "$sy_bin" ]]; then
    cl_log "stopping switchyard (pid $sy_pid)"
    switchyard_stop "$sy_pid" 10
  else
    cl_log "WARNING: pid $sy_pid is not $sy_bin any more ($argv0); not signalling it"
  fi
else
  cl_log "switchyard (pid ${sy_pid:-?}) is not running"
fi

if [[ -n $dir ]]; then
  cl_log "stopping the cluster and removing $dir"
  cluster_down "$dir"
fi
rm -f -- "$state_file"
cl_log "stopped"
