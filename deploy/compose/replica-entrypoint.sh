#!/usr/bin/env bash
# The replica's entry point: on an empty data directory, copy the primary with
# pg_basebackup (-R writes standby.signal and primary_conninfo), then run postgres as a hot
# standby streaming from it.
set -euo pipefail
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD="$REPLICATION_PASSWORD"
  until pg_basebackup -h primary -U replicator -D "$PGDATA" -c fast -X stream -R -w; do
    echo "replica: the primary is not ready for a base backup yet; retrying"
    rm -rf "$PGDATA"
    sleep 2
  done
  unset PGPASSWORD
  echo "replica: base backup taken from the primary"
fi
exec postgres -c hot_standby=on -c max_connections=200
