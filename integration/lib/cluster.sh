# shellcheck shell=bash
#
# Throw-away PostgreSQL 15 clusters (one primary + streaming replicas) and
# Switchyard helpers for the integration scripts. Source this file; it mirrors
# the setup of tests/common/cluster.rs in shell.
#
#   pg_as_owner CMD [ARG...]          run a server binary as `postgres` when root
#   cluster_up DIR PRIMARY_PORT [REPLICA_PORT...]
#   cluster_down DIR                  stop every node (fast), remove DIR
#   write_switchyard_config FILE LISTEN POOL_SIZE POOL_MODE HOST...
#   wait_port HOST PORT TIMEOUT_S [PID]
#
# Extras used by the scripts: port_open, switchyard_build, switchyard_stop,
# cl_log, cl_die.
#
# Layout of a cluster in DIR:
#   DIR/.switchyard-cluster   marker; cluster_down only removes DIR if present
#   DIR/primary/              node dir: unix socket (.s.PGSQL.<port>)
#   DIR/primary/data/         data directory
#   DIR/primary.log           server log (and pg_ctl output)
#   DIR/replicaN/, DIR/replicaN/data/, DIR/replicaN.log   likewise
#
# Environment:
#   SWITCHYARD_PG_BIN  server binaries (default /usr/lib/postgresql/15/bin)
#   PG_FSYNC           fsync setting of the cluster, on|off (default on)
#   PG_WAL_LEVEL       wal_level of the cluster, replica|logical (default replica)
#
# Every function returns non-zero on failure (it never exits the caller), so
# it behaves the same with or without `set -e` in the caller.

PG_BIN=${SWITCHYARD_PG_BIN:-/usr/lib/postgresql/15/bin}

# Roles / database created by cluster_up (same as the Rust harness).
# shellcheck disable=SC2034  # used by the scripts that source this file
CL_APP_USER=app
# shellcheck disable=SC2034
CL_APP_PASSWORD=app_pw
# shellcheck disable=SC2034
CL_APP_DB=app

# Seconds to wait for all replicas to stream.
CL_STREAM_TIMEOUT=${CL_STREAM_TIMEOUT:-60}

# PG* variables of the caller that could redirect or alter our client and
# server invocations.
_CL_SCRUB_ENV=(PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE
  PGSERVICE PGSERVICEFILE PGOPTIONS PGDATA PGSSLMODE PGREQUIRESSL
  PGTARGETSESSIONATTRS PGAPPNAME PGCONNECT_TIMEOUT PGCLIENTENCODING PGTZ PSQLRC)

cl_log() {
  printf '[%s %s] %s\n' "${CL_LOG_TAG:-cluster}" "$(date +%H:%M:%S)" "$*" >&2
}

cl_die() {
  cl_log "ERROR: $*"
  return 1
}

_cl_is_root() {
  [[ $(id -u) == 0 ]]
}

# `env` prefix that drops the caller's PG* variables.
_cl_env() {
  local args=() v
  for v in "${_CL_SCRUB_ENV[@]}"; do
    args+=(-u "$v")
  done
  env "${args[@]}" "$@"
}

# pg_as_owner CMD [ARG...]
# Runs CMD as the `postgres` OS user (via runuser) when the effective uid is 0,
# directly otherwise. A bare CMD name found in $PG_BIN (initdb, pg_ctl, ...) is
# run from there. When root and `postgres` cannot enter the current directory,
# the command runs from / (so pass absolute paths).
pg_as_owner() {
  [[ $# -ge 1 ]] || { cl_die "pg_as_owner: no command"; return 1; }
  local cmd=$1
  shift
  if [[ $cmd != */* && -x $PG_BIN/$cmd ]]; then
    cmd=$PG_BIN/$cmd
  fi
  if _cl_is_root; then
    if runuser -u postgres -- test -x . 2>/dev/null; then
      _cl_env runuser -u postgres -- "$cmd" "$@"
    else
      (cd / && _cl_env runuser -u postgres -- "$cmd" "$@")
    fi
  else
    _cl_env "$cmd" "$@"
  fi
}

# psql as superuser `postgres` through the node's unix socket (trust).
# _cl_psql_super NODE_DIR PORT DB ARG...
_cl_psql_super() {
  local node_dir=$1 port=$2 db=$3
  shift 3
  _cl_env "$PG_BIN/psql" -X -q -A -t -w -v ON_ERROR_STOP=1 \
    -h "$node_dir" -p "$port" -U postgres -d "$db" "$@" </dev/null
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  local host=$1 port=$2
  if command -v timeout >/dev/null 2>&1; then
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
  fi
}

# wait_port HOST PORT TIMEOUT_S [PID]
# Waits until HOST:PORT accepts TCP connections. With PID, gives up as soon as
# that process is gone (e.g. the server that should open the port died).
wait_port() {
  local host=$1 port=$2 timeout_s=$3 pid=${4:-}
  local deadline=$((SECONDS + timeout_s))
  while ! port_open "$host" "$port"; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      cl_die "wait_port: process $pid exited before $host:$port accepted connections"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      cl_die "wait_port: $host:$port not accepting connections after ${timeout_s}s"
      return 1
    fi
    sleep 0.1
  done
}

# Append a conf file owned by postgres (appending keeps the owner).
_cl_append() {
  local file=$1 text=$2
  printf '%s' "$text" >>"$file"
}

# Quote for postgresql.conf.
_cl_conf_quote() {
  local s=${1//\'/\'\'}
  printf "'%s'" "$s"
}

_cl_log_tail() {
  local log=$1
  if [[ -f $log ]]; then
    echo "--- last lines of $log ---" >&2
    tail -n 30 "$log" >&2
    echo "---" >&2
  fi
}

# _cl_start_node NAME DIR: pg_ctl start of DIR/NAME/data, log in DIR/NAME.log.
_cl_start_node() {
  local name=$1 dir=$2
  local log=$dir/$name.log
  # pg_ctl's own messages go to the server log too (both append).
  # shellcheck disable=SC2094
  if ! pg_as_owner pg_ctl -D "$dir/$name/data" -l "$log" -w -t 60 start >>"$log" 2>&1; then
    cl_die "pg_ctl start of $name failed"
    _cl_log_tail "$log"
    return 1
  fi
}

# _cl_mk_node_dir NAME DIR: node dir DIR/NAME and log DIR/NAME.log, owned by
# postgres when root (the server appends to the log itself).
_cl_mk_node_dir() {
  local name=$1 dir=$2
  mkdir "$dir/$name" || return 1
  : >>"$dir/$name.log" || return 1
  if _cl_is_root; then
    chown postgres: "$dir/$name" "$dir/$name.log" || return 1
  fi
}

# cluster_up DIR PRIMARY_PORT [REPLICA_PORT...]
# Creates and starts a primary on 127.0.0.1:PRIMARY_PORT and one streaming
# replica per REPLICA_PORT, in DIR (created if missing; must be empty).
# Returns once every replica is streaming (CL_STREAM_TIMEOUT s, default 60).
# On failure the nodes started so far keep running: call cluster_down DIR.
cluster_up() {
  if [[ $# -lt 2 ]]; then
    cl_die "usage: cluster_up DIR PRIMARY_PORT [REPLICA_PORT...]"
    return 1
  fi
  local dir=$1 pport=$2
  shift 2
  local rports=("$@") p t0=$SECONDS

  for p in "$pport" "${rports[@]}"; do
    if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
      cl_die "cluster_up: bad port '$p'"
      return 1
    fi
    if port_open 127.0.0.1 "$p"; then
      cl_die "cluster_up: port $p on 127.0.0.1 is already in use"
      return 1
    fi
  done

  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd) || return 1
  if [[ -n $(ls -A "$dir") ]]; then
    cl_die "cluster_up: $dir is not empty"
    return 1
  fi
  : >"$dir/.switchyard-cluster" || return 1
  if _cl_is_root; then
    chown postgres: "$dir" || return 1
    if ! runuser -u postgres -- test -w "$dir" -a -x "$dir"; then
      cl_die "cluster_up: user postgres cannot write to $dir (check the permissions of its parent directories)"
      return 1
    fi
  fi

  # --- primary
  local pdir=$dir/primary plog=$dir/primary.log
  cl_log "initdb primary in $pdir"
  _cl_mk_node_dir primary "$dir" || return 1
  if ! pg_as_owner initdb -D "$pdir/data" --auth-local=trust --auth-host=scram-sha-256 \
    -U postgres --encoding=UTF8 --locale=C --no-sync >>"$plog" 2>&1; then
    cl_die "initdb failed"
    _cl_log_tail "$plog"
    return 1
  fi

  local fsync=${PG_FSYNC:-on} wal_level=${PG_WAL_LEVEL:-replica}
  [[ $fsync == on || $fsync == off ]] ||
    { cl_die "PG_FSYNC must be on or off, not '$fsync'"; return 1; }
  [[ $wal_level == replica || $wal_level == logical ]] ||
    { cl_die "PG_WAL_LEVEL must be replica or logical, not '$wal_level'"; return 1; }

  _cl_append "$pdir/data/postgresql.conf" "
# switchyard integration/lib/cluster.sh
listen_addresses = '127.0.0.1'
port = $pport
unix_socket_directories = $(_cl_conf_quote "$pdir")
cluster_name = 'primary'
max_connections = 300
shared_buffers = 128MB
fsync = $fsync
wal_level = $wal_level
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
logging_collector = off
password_encryption = 'scram-sha-256'
" || return 1

  # Truncating the existing file keeps its owner (postgres).
  cat >"$pdir/data/pg_hba.conf" <<'EOF' || return 1
# switchyard integration/lib/cluster.sh
local all         all                    trust
host  replication all     127.0.0.1/32   trust
host  all         all     127.0.0.1/32   scram-sha-256
EOF

  _cl_start_node primary "$dir" || return 1

  # Each -c is sent (and committed) separately; CREATE DATABASE cannot run in
  # a multi-statement string.
  if ! _cl_psql_super "$pdir" "$pport" postgres \
    -c "SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN SUPERUSER PASSWORD 'app_pw'" \
    -c "CREATE DATABASE app OWNER app" >>"$plog" 2>&1; then
    cl_die "creating role app / database app failed"
    _cl_log_tail "$plog"
    return 1
  fi
  cl_log "primary up on 127.0.0.1:$pport ($((SECONDS - t0))s)"

  # --- replicas
  local i=0 rp name rdir rlog names=()
  local bb_opts=(-c fast -R -X stream)
  [[ $fsync == off ]] && bb_opts+=(--no-sync)
  for rp in "${rports[@]}"; do
    i=$((i + 1))
    name=replica$i
    rdir=$dir/$name
    rlog=$dir/$name.log
    cl_log "pg_basebackup $name"
    _cl_mk_node_dir "$name" "$dir" || return 1
    if ! pg_as_owner pg_basebackup -h 127.0.0.1 -p "$pport" -U postgres \
      -D "$rdir/data" "${bb_opts[@]}" >>"$rlog" 2>&1; then
      cl_die "pg_basebackup for $name failed"
      _cl_log_tail "$rlog"
      return 1
    fi
    _cl_append "$rdir/data/postgresql.auto.conf" "
# switchyard integration/lib/cluster.sh
port = $rp
unix_socket_directories = $(_cl_conf_quote "$rdir")
cluster_name = '$name'
" || return 1
    _cl_start_node "$name" "$dir" || return 1
    names+=("'$name'")
  done

  # --- wait until every replica streams (cluster_name is the walreceiver's
  # application_name).
  if ((${#names[@]} > 0)); then
    local list sql n=""
    list=$(
      IFS=,
      echo "${names[*]}"
    )
    sql="SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name IN ($list)"
    local deadline=$((SECONDS + CL_STREAM_TIMEOUT))
    while :; do
      n=$(_cl_psql_super "$pdir" "$pport" postgres -c "$sql" 2>/dev/null) || n=""
      [[ $n == "${#names[@]}" ]] && break
      if ((SECONDS >= deadline)); then
        cl_die "replicas not streaming after ${CL_STREAM_TIMEOUT}s (streaming: ${n:-?} of ${#names[@]})"
        _cl_psql_super "$pdir" "$pport" postgres \
          -c "SELECT application_name, state FROM pg_stat_replication" >&2 || true
        for ((i = 1; i <= ${#rports[@]}; i++)); do
          _cl_log_tail "$dir/replica$i.log"
        done
        _cl_log_tail "$plog"
        return 1
      fi
      sleep 0.2
    done
  fi
  cl_log "cluster ready in $dir: primary 127.0.0.1:$pport, replicas [${rports[*]}] ($((SECONDS - t0))s)"
}

# make_test_certs DIR: a throw-away CA (DIR/ca.crt) and a server certificate for
# 127.0.0.1 and localhost signed by it (DIR/server.crt, DIR/server.key), with openssl.
make_test_certs() {
  local d=$1
  (
    set -e
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=switchyard test ca" \
      -keyout ca.key -out ca.crt -addext basicConstraints=critical,CA:TRUE 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.crt 2>/dev/null
    chmod 600 server.key ca.key
  ) || { cl_die "make_test_certs: openssl failed"; return 1; }
}

# cluster_enable_ssl CERT KEY NODE_DIR:PORT...: turns TLS on in each running node
# (ssl = on, reloaded) with this certificate and key, copied into its directory.
cluster_enable_ssl() {
  local cert=$1 key=$2 node ndir port
  shift 2
  for node in "$@"; do
    ndir=${node%:*}
    port=${node##*:}
    cp "$cert" "$ndir/server.crt" && cp "$key" "$ndir/server.key" || return 1
    chmod 600 "$ndir/server.key" || return 1
    if _cl_is_root; then
      chown postgres: "$ndir/server.crt" "$ndir/server.key" || return 1
    fi
    _cl_psql_super "$ndir" "$port" postgres -c "ALTER SYSTEM SET ssl_cert_file = $(_cl_conf_quote "$ndir/server.crt")" &&
      _cl_psql_super "$ndir" "$port" postgres -c "ALTER SYSTEM SET ssl_key_file = $(_cl_conf_quote "$ndir/server.key")" &&
      _cl_psql_super "$ndir" "$port" postgres -c "ALTER SYSTEM SET ssl = on" &&
      _cl_psql_super "$ndir" "$port" postgres -c "SELECT pg_reload_conf()" >/dev/null || return 1
  done
  sleep 1
}

# switchyard_tls_both_sides CONFIG TLS_DIR NODE_DIR:PORT...: throw-away certificates in
# TLS_DIR, ssl = on in each node, and in Switchyard's CONFIG (whose last table is the
# database's) server_tls = "verify-full" plus a [tls] table. Clients verify with
# TLS_DIR/ca.crt.
switchyard_tls_both_sides() {
  local config=$1 tls=$2
  shift 2
  mkdir -p "$tls" && make_test_certs "$tls" || return 1
  cluster_enable_ssl "$tls/server.crt" "$tls/server.key" "$@" || return 1
  cat >>"$config" <<EOF
server_tls = "verify-full"
server_ca = "$tls/ca.crt"

[tls]
cert = "$tls/server.crt"
key = "$tls/server.key"
EOF
}

# cluster_down DIR
# pg_ctl stop -m fast for every node under DIR (already stopped ones are
# skipped; a node that does not stop within 60 s is killed), then removes DIR.
# Does nothing (but warn) unless cluster_up created DIR (marker file).
cluster_down() {
  local dir=${1:-}
  if [[ -z $dir || $dir == / ]]; then
    cl_die "usage: cluster_down DIR"
    return 1
  fi
  [[ -d $dir ]] || return 0
  if [[ ! -e $dir/.switchyard-cluster ]]; then
    cl_log "WARNING: $dir was not created by cluster_up; leaving it alone"
    return 0
  fi
  local data pids=() pid
  for data in "$dir"/*/data; do
    [[ -f $data/postmaster.pid ]] || continue
    pg_as_owner pg_ctl -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || true
  done
  for data in "$dir"/*/data; do
    [[ -f $data/postmaster.pid ]] || continue
    pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || pid=""
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      cl_log "postmaster $pid ($data) still running, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf -- "$dir"
}

_cl_toml_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# write_switchyard_config FILE LISTEN POOL_SIZE POOL_MODE HOST...
# HOST is "host:port" (a bare port means 127.0.0.1:port). User app/app_pw,
# database [databases.app]; every other key keeps its default.
write_switchyard_config() {
  if [[ $# -lt 5 ]]; then
    cl_die "usage: write_switchyard_config FILE LISTEN POOL_SIZE POOL_MODE HOST..."
    return 1
  fi
  local file=$1 listen=$2 pool_size=$3 pool_mode=$4
  shift 4
  case $pool_mode in
    session | transaction | statement) ;;
    *)
      cl_die "write_switchyard_config: pool mode must be session, transaction or statement, not '$pool_mode'"
      return 1
      ;;
  esac
  if ! [[ $pool_size =~ ^[0-9]+$ ]]; then
    cl_die "write_switchyard_config: bad pool size '$pool_size'"
    return 1
  fi
  local h hosts=()
  for h in "$@"; do
    [[ $h =~ ^[0-9]+$ ]] && h=127.0.0.1:$h
    hosts+=("$(_cl_toml_string "$h")")
  done
  local host_list
  host_list=$(
    IFS=,
    echo "${hosts[*]}"
  )
  host_list=${host_list//,/, }
  cat >"$file" <<EOF || return 1
# Written by integration/lib/cluster.sh (write_switchyard_config).
listen = $(_cl_toml_string "$listen")

[[users]]
name = "app"
password = "app_pw"

[databases.app]
hosts = [$host_list]
dbname = "app"
pool_mode = "$pool_mode"
pool_size = $pool_size
EOF
  # It holds a password: Switchyard warns about a config file others can read.
  chmod 600 "$file"
}

# switchyard_build REPO_DIR: prints the path of the switchyard binary.
# Uses $SWITCHYARD_BIN when set; otherwise runs `cargo build --release` in
# REPO_DIR (build output goes to stderr).
switchyard_build() {
  local repo=$1
  if [[ -n ${SWITCHYARD_BIN:-} ]]; then
    if [[ ! -x $SWITCHYARD_BIN ]]; then
      cl_die "SWITCHYARD_BIN=$SWITCHYARD_BIN is not an executable"
      return 1
    fi
    cl_log "using SWITCHYARD_BIN=$SWITCHYARD_BIN (not building)"
    printf '%s\n' "$SWITCHYARD_BIN"
    return 0
  fi
  cl_log "cargo build --release in $repo"
  (cd "$repo" && cargo build --release) >&2 || {
    cl_die "cargo build --release failed"
    return 1
  }
  local target=${CARGO_TARGET_DIR:-$repo/target}
  [[ $target == /* ]] || target=$repo/$target
  printf '%s\n' "$target/release/switchyard"
}

# switchyard_stop PID [TIMEOUT_S]
# SIGTERM (Switchyard drains its clients), SIGKILL after TIMEOUT_S (default
# 10) seconds. Reaps PID when it is a child of this shell.
switchyard_stop() {
  local pid=$1 timeout_s=${2:-10}
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout_s))
  while kill -0 "$pid" 2>/dev/null; do
    # A zombie child of ours counts as gone.
    if [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
      break
    fi
    if ((SECONDS >= deadline)); then
      cl_log "switchyard $pid did not stop within ${timeout_s}s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}

# --- shared cleanup for the scripts' EXIT traps ------------------------------

# cl_stop_pid PID WHAT: SIGTERM a background process of this shell and wait for it.
cl_stop_pid() {
  [[ -n ${1:-} ]] || return 0
  cl_log "stopping $2 (pid $1)"
  kill -TERM "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}

# cl_stop_switchyard PID LOG RC KEEP_FILE: stop Switchyard, print the tail of its log when
# the script failed (RC != 0), and copy the log to KEEP_FILE if one is given.
cl_stop_switchyard() {
  local pid=${1:-} log=${2:-} rc=${3:-0} keep=${4:-}
  if [[ -n $pid ]]; then
    cl_log "stopping switchyard (pid $pid)"
    switchyard_stop "$pid" 10
  fi
  [[ -n $log && -f $log ]] || return 0
  if [[ $rc != 0 ]]; then
    echo "--- last 40 lines of the switchyard log ---" >&2
    tail -n 40 "$log" >&2
    echo "---" >&2
  fi
  if [[ -n $keep ]]; then
    cp -- "$log" "$keep" && cl_log "switchyard log kept in $keep"
  fi
  return 0
}

# bench_primary_up DIR PORT SCALE [REPLICA_PORT...]: a throw-away primary in DIR on
# PORT (and streaming replicas), loaded with `pgbench -i -s SCALE`; libpq's environment
# is scrubbed and PGPASSWORD set for the app user, so pgbench and psql reach the servers
# and the poolers.
bench_primary_up() {
  cluster_up "$1" "$2" "${@:4}" || return 1
  local v
  for v in "${_CL_SCRUB_ENV[@]}"; do unset "$v"; done
  export PGPASSWORD=$CL_APP_PASSWORD PGSSLMODE=disable
  "$PG_BIN/pgbench" -i -s "$3" -q -h 127.0.0.1 -p "$2" -U "$CL_APP_USER" "$CL_APP_DB" >/dev/null 2>&1
}

# pgbouncer_up DIR PORT PG_PORT POOL_SIZE [VAR=VALUE...]: PgBouncer on 127.0.0.1:PORT in
# front of the app database on 127.0.0.1:PG_PORT (transaction mode, SCRAM with the app
# user's plaintext password in its userlist, no Unix socket), its files in DIR, run with
# the given extra environment (as the postgres user when this runs as root). Sets PGB_PID.
pgbouncer_up() {
  local dir=$1 port=$2 pg_port=$3 pool=$4 bin
  shift 4
  bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  mkdir -p "$dir"
  printf '"%s" "%s"\n' "$CL_APP_USER" "$CL_APP_PASSWORD" >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
$CL_APP_DB = host=127.0.0.1 port=$pg_port dbname=$CL_APP_DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $pool
max_client_conn = 2000
logfile = $dir/pgbouncer.log
INI
  if [[ $(id -u) == 0 ]]; then
    chown -R postgres: "$dir"
    # setpriv execs (no fork), so $! is PgBouncer itself.
    (cd / && exec env "$@" setpriv --reuid=postgres --regid=postgres --init-groups \
      "$bin" "$dir/pgbouncer.ini") </dev/null >>"$dir/stdout.log" 2>&1 &
  else
    (exec env "$@" "$bin" "$dir/pgbouncer.ini") </dev/null >>"$dir/stdout.log" 2>&1 &
  fi
  PGB_PID=$!
  wait_port 127.0.0.1 "$port" 30 "$PGB_PID"
}

# _cl_ticks PID AWK_EXPR: AWK_EXPR over the fields of /proc/PID/stat after the
# command name (which may hold spaces: field 14, utime, is $12 there); empty when
# the process is gone.
_cl_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo ""; return 0; }
  stat=${stat##*) }
  awk "{print $2}" <<<"$stat"
}

# cpu_ticks PID: the process's CPU time (utime + stime, all threads) in clock
# ticks; empty when it is gone.
cpu_ticks() { _cl_ticks "$1" '$12 + $13'; }

# user_ticks PID: the user-space part of cpu_ticks (utime only), the part that a
# change to Switchyard's own code moves; empty when it is gone.
user_ticks() { _cl_ticks "$1" '$12'; }

# cl_report RC START_SECONDS: the final PASS/FAIL line.
cl_report() {
  if [[ $1 == 0 ]]; then
    cl_log "PASS (total $((SECONDS - $2))s)"
  else
    cl_log "FAIL, exit status $1 (total $((SECONDS - $2))s)"
  fi
}
