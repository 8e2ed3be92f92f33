#!/usr/bin/env bash
# Run once by the postgres image when the primary's data directory is new: the
# application's role (owner of the database app) and the replica's replication role, with
# passwords from the environment, and a pg_hba.conf line that lets the replica stream.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_pw="$APP_PASSWORD" -v repl_pw="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE app LOGIN PASSWORD :'app_pw';
ALTER DATABASE app OWNER TO app;
ALTER SCHEMA public OWNER TO app;
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'repl_pw';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
