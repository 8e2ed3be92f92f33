#!/usr/bin/env bash
# Fails the compose stack over: stops the primary's container, promotes the replica, and
# waits until a write through Switchyard succeeds (Switchyard finds the new primary at its
# next health check). Run from anywhere; COMPOSE_PROJECT_NAME is honoured as by compose.
# To start over afterwards: docker compose down -v && docker compose up.
set -euo pipefail
cd "$(dirname "$0")/../.."
compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

echo "failover: stopping the primary"
compose stop primary
echo "failover: promoting the replica"
compose exec -T replica pg_ctl promote -w -D /var/lib/postgresql/data/pgdata
echo "failover: waiting for a write through Switchyard"
for attempt in $(seq 1 30); do
  if compose run --rm --no-deps -T --entrypoint psql pgbench \
       -h switchyard -p 6432 -U app -d app -v ON_ERROR_STOP=1 -qAt -c \
       "CREATE TABLE IF NOT EXISTS failover_log (at timestamptz NOT NULL);
        INSERT INTO failover_log VALUES (now());
        SELECT 'failover: a write through Switchyard landed on ' || inet_server_addr()
               || ' (in recovery: ' || pg_is_in_recovery() || ')'"; then
    exit 0
  fi
  echo "failover: no primary yet (attempt $attempt); retrying"
  sleep 1
done
echo "failover: writes did not resume through Switchyard" >&2
exit 1
