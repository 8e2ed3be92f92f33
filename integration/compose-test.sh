#!/usr/bin/env bash
# The compose stack, for real: starts a Docker engine if none runs (installing docker.io,
# docker-compose and debootstrap from Debian when missing), builds the base images the files
# name without pulling (integration/docker/base-images.sh), then runs the unchanged
# docker-compose.yml and checks that every service turns healthy, pgbench through
# Switchyard has no failed transaction, writes reached the primary and reads the replica
# (read off the servers' statistics), deploy/compose/failover.sh promotes the replica with
# writes resuming through Switchyard, and `down -v` leaves no container, volume or network.
#
# Without a Docker engine that can start it prints why and exits 0, unless
# REQUIRE_DOCKER=1. COMPOSE_TEST_KEEP=1 leaves the stack up on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-switchyardtest}"
export POSTGRES_PASSWORD="pg-$RANDOM$RANDOM" APP_PASSWORD="app-$RANDOM$RANDOM"
export REPLICATION_PASSWORD="repl-$RANDOM$RANDOM" PGBENCH_SECONDS="${PGBENCH_SECONDS:-5}"
# Host ports nothing else here uses.
export SWITCHYARD_PORT="${SWITCHYARD_PORT:-16432}" SWITCHYARD_METRICS_PORT="${SWITCHYARD_METRICS_PORT:-19930}"

log() { echo "compose-test: $*"; }
skip() {
  if [ "${REQUIRE_DOCKER:-0}" = 1 ]; then log "FAIL: $*"; exit 1; fi
  log "skipped: $*"; exit 0
}

ensure_docker() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || skip "cannot install ${missing[*]}"
  fi
  docker info >/dev/null 2>&1 && return
  log "starting dockerd"
  (nohup dockerd >/var/log/switchyard-dockerd.log 2>&1 &)
  for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && return; sleep 1; done
  tail -n 5 /var/log/switchyard-dockerd.log || true
  skip "no Docker engine could be started"
}

compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ] && [ "${COMPOSE_TEST_KEEP:-0}" = 1 ]; then log "left the stack up"; return; fi
  if [ $rc -ne 0 ]; then compose logs --no-color --tail=40 >&2 || true; fi
  compose down -v --remove-orphans >/dev/null 2>&1 || true
}

# The health of a service's container: healthy, unhealthy, starting, or its state.
health() {
  local id
  id=$(compose ps -q "$1")
  [ -n "$id" ] || { echo missing; return; }
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id"
}

wait_healthy() {
  local svc
  for svc in "$@"; do
    for _ in $(seq 1 120); do [ "$(health "$svc")" = healthy ] && break; sleep 1; done
    [ "$(health "$svc")" = healthy ] || { log "FAIL: $svc is $(health "$svc")"; exit 1; }
    log "$svc: healthy"
  done
}

# One number from a server's psql, as its postgres superuser over the local socket.
on_server() { compose exec -T "$1" psql -U postgres -d app -Atq -c "$2" | tr -d '\r'; }

ensure_docker
bash integration/docker/base-images.sh
# The image is the profile-guided build unless SWITCHYARD_PGO=0. Its training merges the
# profiles with llvm-profdata, which the rust image must hold or be able to add with rustup;
# base-images.sh's stand-in copies this machine's toolchain, which has it once rustup's
# llvm-tools is installed (.ci/run adds it).
if [ -z "${SWITCHYARD_PGO:-}" ] && ! docker run --rm rust:1-bookworm bash -c \
    'command -v rustup || ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/llvm-profdata' >/dev/null 2>&1; then
  log "the rust image has neither llvm-profdata nor rustup: building the plain image (SWITCHYARD_PGO=0)"
  export SWITCHYARD_PGO=0
fi
build_kind=$([ "${SWITCHYARD_PGO:-1}" = 1 ] && echo profile-guided || echo plain)
trap cleanup EXIT
compose down -v --remove-orphans >/dev/null 2>&1 || true

log "docker compose up -d --build (build log: /tmp/switchyard-compose-build.log)"
compose up -d --build >/tmp/switchyard-compose-build.log 2>&1 \
  || { tail -n 30 /tmp/switchyard-compose-build.log; exit 1; }
log "image switchyard:local ($build_kind build): $(docker image inspect switchyard:local \
  --format '{{.Size}}' | awk '{printf "%.1f MB", $1 / 1e6}')"
wait_healthy primary replica switchyard

pgbench_id=$(compose ps -q pgbench)
[ -n "$pgbench_id" ] || { log "FAIL: no pgbench container"; exit 1; }
pgbench_rc=$(timeout 300 docker wait "$pgbench_id")
summary=$(docker logs "$pgbench_id" 2>&1)
echo "$summary" | grep -vE '^progress: ' | sed 's/^/  | /'
[ "$pgbench_rc" = 0 ] || { log "FAIL: pgbench exited with $pgbench_rc"; exit 1; }
failed=$(echo "$summary" | grep -c '^number of failed transactions: 0 ' || true)
[ "$failed" = 2 ] || { log "FAIL: pgbench reported failed transactions"; exit 1; }
selects=$(echo "$summary" | grep '^number of transactions actually processed' | tail -n1 | awk '{print $NF}')
log "pgbench: both runs finished, 0 failed transactions"

# Writes on the primary: pgbench_history's rows were inserted there.
inserted=$(on_server primary "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'pgbench_history'")
[ "${inserted:-0}" -gt 0 ] || { log "FAIL: no insert into pgbench_history on the primary"; exit 1; }
log "primary: $inserted rows inserted into pgbench_history"
# Reads on the replica: the select-only run's index scans are counted there (a backend's
# statistics can take up to 10 s to be flushed while it stays connected).
for _ in $(seq 1 30); do
  scans=$(on_server replica "SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'pgbench_accounts'")
  [ "${scans:-0}" -ge "$selects" ] && break
  sleep 1
done
[ "${scans:-0}" -ge "$selects" ] \
  || { log "FAIL: the replica counted ${scans:-0} index scans for $selects select-only transactions"; exit 1; }
log "replica: $scans index scans of pgbench_accounts ($selects select-only transactions)"
[ "$(on_server replica 'SELECT pg_is_in_recovery()')" = t ] || { log "FAIL: the replica is not in recovery"; exit 1; }

log "failover: deploy/compose/failover.sh"
bash deploy/compose/failover.sh 2>&1 | sed 's/^/  | /'
[ "$(on_server replica 'SELECT pg_is_in_recovery()')" = f ] || { log "FAIL: the replica was not promoted"; exit 1; }
landed=$(on_server replica "SELECT count(*) FROM failover_log")
[ "${landed:-0}" -ge 1 ] || { log "FAIL: the write after failover is not on the new primary"; exit 1; }
log "failover: the replica is the primary and holds the write made through Switchyard"

log "docker compose down -v"
compose down -v --remove-orphans >/dev/null 2>&1
label="label=com.docker.compose.project=$COMPOSE_PROJECT_NAME"
left="$(docker ps -aq --filter "$label")$(docker volume ls -q --filter "$label")$(docker network ls -q --filter "$label")"
[ -z "$left" ] || { log "FAIL: left behind: $left"; exit 1; }
log "down -v left no container, volume or network"
log "passed"
