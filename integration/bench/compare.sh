#!/usr/bin/env bash
# Switchyard vs PgBouncer vs direct PostgreSQL, with pgbench.
#
#   1. start a throw-away PostgreSQL 15 primary (fsync on; integration/lib/cluster.sh)
#      and load it with `pgbench -i -s $SCALE`;
#   2. start PgBouncer (installed with apt-get when missing; run as the
#      `postgres` OS user with our own ini on its own port) and Switchyard, both
#      in transaction mode with 20 server connections for app/app, SCRAM-SHA-256;
#   3. run six pgbench workloads against A = direct, B = PgBouncer,
#      C = Switchyard, $ROUNDS rounds each, the order rotated every round
#      (ABC, BCA, CAB, ...), $DURATION s per run:
#        1. -S -c 32 -j 2                 select-only
#        2.    -c 32 -j 2                 TPC-B-like
#        3. -S -M prepared -c 32 -j 2     (PgBouncer 1.18: -M simple instead)
#        4. -S -C -c 16 -j 2              a new connection per transaction
#        5. -S -c 500 -j 2                many clients over 20 server connections
#        6. -S -c 1 -j 1 -l               single-client latency (p50/p99 from the log)
#        7. -S -c 32 -j 2, sslmode=require   select-only over TLS between
#           pgbench and the pooler (PgBouncer client_tls_*, Switchyard [tls];
#           throw-away certificates from openssl; direct is not run: the
#           server has no TLS, and neither pooler uses TLS toward it)
#      recording TPS, average latency and the pooler's CPU time per 1,000
#      transactions (utime+stime from /proc/<pid>/stat), and its user-space
#      part (utime) on its own;
#   4. restart each pooler and measure its RSS with $IDLE_CLIENTS idle,
#      authenticated clients (integration/bench/idle_clients.py);
#   5. print a markdown report and write it to $OUTPUT.
#
# Everything (poolers, cluster, temp dir) is removed on exit, also on failure
# or Ctrl-C. Run as root (PostgreSQL and PgBouncer then run as `postgres`) or
# as an ordinary user with PgBouncer installed. Needs python3 (stdlib only).
# About 22 minutes with the defaults.
#
# Usage: integration/bench/compare.sh
#
# Environment:
#   DURATION              seconds per pgbench run (default 20)
#   ROUNDS                rounds per workload (default 3)
#   WORKLOADS             which workloads to run, e.g. "1 2 6" (default all)
#   IDLE_CLIENTS          idle clients for the memory test, 0 skips it (default 5000)
#   WARMUP                seconds of unmeasured warm-up per target (default 3)
#   SCALE                 pgbench -i scale (default 10)
#   TRANSPORT             "tcp" (loopback, the default) or "unix": pgbench talks
#                         to every target over its Unix-domain socket, and both
#                         poolers reach PostgreSQL over its socket (PgBouncer
#                         host=<socket dir>, Switchyard hosts = ["<dir>:<port>"]
#                         and listen_unix_dir); workload 7 (TLS) is skipped and
#                         the default OUTPUT is docs/benchmarks-unix.md. The
#                         idle-client memory test stays on TCP.
#   MANY_CLIENTS          clients of workload 5 (default 500)
#   DIRECT_MANY           1: run workload 5 against PostgreSQL directly too
#                         (max_connections is raised for it); 0: skip (default 1)
#   LOG_CONNECTIONS       1: poolers log every connection as by default
#                         (PgBouncer log_connections/log_disconnections = 1,
#                         Switchyard RUST_LOG=info); 0: neither does
#                         (PgBouncer 0/0, RUST_LOG=warn) (default 1)
#   PGB_PASSWORD          what PgBouncer's userlist.txt holds for app: "scram"
#                         (the SCRAM verifier from pg_authid, so logins cost a
#                         few HMACs, as Switchyard's) or "plain" (default scram)
#   OUTPUT                report file, relative to the repo (default
#                         docs/benchmarks.md); "-" prints only
#   BENCH_NOTE            text put at the top of the report (e.g. "noisy
#                         machine"); "\n" starts a new line
#   BENCH_PRIMARY_PORT    PostgreSQL port (default 25482)
#   BENCH_PGBOUNCER_PORT  PgBouncer port (default 6482)
#   BENCH_SWITCHYARD_PORT Switchyard port (default 6483)
#   SWITCHYARD_BIN        use this binary instead of `cargo build --release`
#   BENCH_KEEP_DIR        copy the work dir (pgbench outputs, logs) here on exit
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/../lib/cluster.sh
. "$repo/integration/lib/cluster.sh"
CL_LOG_TAG=bench

case ${1:-} in
  "") ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "compare.sh: unknown argument '$1' (try --help)" >&2
    exit 2
    ;;
esac

duration=${DURATION:-20}
rounds=${ROUNDS:-3}
workloads=${WORKLOADS:-1 2 3 4 5 6 7}
idle_clients=${IDLE_CLIENTS:-5000}
warmup=${WARMUP:-3}
scale=${SCALE:-10}
many=${MANY_CLIENTS:-500}
direct_many=${DIRECT_MANY:-1}
log_conn=${LOG_CONNECTIONS:-1}
pgb_password=${PGB_PASSWORD:-scram}
transport=${TRANSPORT:-tcp}
[[ $transport == tcp || $transport == unix ]] || { echo "compare.sh: TRANSPORT must be tcp or unix" >&2; exit 2; }
default_output=docs/benchmarks.md
[[ $transport == unix ]] && default_output=docs/benchmarks-unix.md
output=${OUTPUT:-$default_output}
pg_port=${BENCH_PRIMARY_PORT:-25482}
pgb_port=${BENCH_PGBOUNCER_PORT:-6482}
sy_port=${BENCH_SWITCHYARD_PORT:-6483}
pool_size=20
idle_settle=3
t_start=$SECONDS

die() {
  echo "compare.sh: $*" >&2
  exit 2
}
for v in duration rounds scale many; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "${v^^} must be a positive integer, not '${!v}'"
done
for v in idle_clients warmup; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "${v^^} must be a non-negative integer, not '${!v}'"
done
[[ $direct_many =~ ^[01]$ ]] || die "DIRECT_MANY must be 0 or 1"
[[ $log_conn =~ ^[01]$ ]] || die "LOG_CONNECTIONS must be 0 or 1"
[[ $pgb_password == scram || $pgb_password == plain ]] || die "PGB_PASSWORD must be scram or plain"
for w in $workloads; do
  [[ $w =~ ^[1-7]$ ]] || die "WORKLOADS: unknown workload '$w' (1-7)"
done
if [[ $transport == unix ]]; then
  # TLS is a TCP matter: PostgreSQL and both poolers never use it on a socket.
  workloads=$(tr ' ' '\n' <<<"$workloads" | grep -v '^7$' | tr '\n' ' ')
fi
for p in "$pg_port" "$pgb_port" "$sy_port"; do
  port_open 127.0.0.1 "$p" && die "port $p on 127.0.0.1 is already in use"
done
command -v python3 >/dev/null || die "python3 is required"
[[ -x $PG_BIN/pgbench ]] || die "$PG_BIN/pgbench not found"

PGBENCH=$PG_BIN/pgbench
PSQL=$PG_BIN/psql
is_root=0
[[ $(id -u) == 0 ]] && is_root=1

# --- PgBouncer binary
pgbouncer_bin=$(command -v pgbouncer || true)
[[ -z $pgbouncer_bin && -x /usr/sbin/pgbouncer ]] && pgbouncer_bin=/usr/sbin/pgbouncer
if [[ -z $pgbouncer_bin ]]; then
  ((is_root)) || die "pgbouncer is not installed (apt-get install pgbouncer, as root)"
  cl_log "installing pgbouncer (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # Its packaged service (port 6432, /etc/pgbouncer) is not used; we run our own.
  apt-get install -y -qq --no-install-recommends pgbouncer >&2
  pgbouncer_bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  [[ -x $pgbouncer_bin ]] || die "pgbouncer still not found after apt-get install"
fi

# --- file descriptors: 500 pgbench clients, $idle_clients idle clients (the
# client and the pooler each hold one socket per client).
need_fds=$((idle_clients + many + 1000))
((need_fds < 20000)) && need_fds=20000
if (($(ulimit -Hn) < need_fds)); then
  ulimit -Hn "$need_fds" 2>/dev/null || true
fi
if (($(ulimit -Hn) < need_fds)); then
  ulimit -Sn "$(ulimit -Hn)"
else
  ulimit -Sn "$need_fds"
fi
if (($(ulimit -n) < idle_clients + 100)); then
  die "open-file limit $(ulimit -n) is too low for IDLE_CLIENTS=$idle_clients (raise ulimit -Hn)"
fi

dir=""
pgb_pid=""
sy_pid=""
bench_pid=""
idle_pid=""
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  for pid in "$bench_pid" "$idle_pid"; do
    [[ -n $pid ]] || continue
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  stop_pgbouncer
  stop_switchyard
  if [[ -n $dir ]]; then
    if [[ -n ${BENCH_KEEP_DIR:-} ]]; then
      mkdir -p "$BENCH_KEEP_DIR" && cp -r "$dir/." "$BENCH_KEEP_DIR/" 2>/dev/null
      rm -rf "$BENCH_KEEP_DIR/cluster"
      cl_log "work files kept in $BENCH_KEEP_DIR"
    fi
    cl_log "stopping the cluster and removing $dir"
    cluster_down "$dir/cluster"
    rm -rf -- "$dir"
  fi
  if [[ $rc == 0 ]]; then
    cl_log "done (total $((SECONDS - t_start))s)"
  else
    cl_log "FAILED, exit status $rc (total $((SECONDS - t_start))s)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

rss_kb() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo ""
}

# ------------------------------------------------------------------ setup
bin=$(switchyard_build "$repo")
[[ -x $bin ]] || die "switchyard binary $bin missing"

dir=$(mktemp -d /tmp/switchyard-bench.XXXXXX)
chmod 755 "$dir"
mkdir "$dir/runs" "$dir/pgbouncer" "$dir/sysock"
# Our own copy: others may rebuild target/release while we run.
cp -- "$bin" "$dir/switchyard"
bin=$dir/switchyard

max_conn=300
((direct_many)) && ((many + 100 > max_conn)) && max_conn=$((many + 100))
cluster_up "$dir/cluster" "$pg_port"
pdata=$dir/cluster/primary/data
printf '\n# integration/bench/compare.sh\nmax_connections = %s\n' "$max_conn" >>"$pdata/postgresql.conf"
if ((max_conn != 300)); then
  cl_log "restarting the primary with max_connections = $max_conn"
  # shellcheck disable=SC2094  # pg_ctl -l and our redirection both append
  pg_as_owner pg_ctl -D "$pdata" -l "$dir/cluster/primary.log" -w -t 60 -m fast restart \
    >>"$dir/cluster/primary.log" 2>&1 || die "restart of the primary failed"
fi

for v in "${_CL_SCRUB_ENV[@]}"; do
  unset "$v"
done
export PGPASSWORD=$CL_APP_PASSWORD PGCONNECT_TIMEOUT=10 PGSSLMODE=disable

super_sql() {
  _cl_psql_super "$dir/cluster/primary" "$pg_port" "$CL_APP_DB" -c "$1"
}

cl_log "pgbench -i -s $scale (direct)"
"$PGBENCH" -i -s "$scale" -q -h 127.0.0.1 -p "$pg_port" -U "$CL_APP_USER" "$CL_APP_DB" \
  >"$dir/init.out" 2>&1 || {
  cat "$dir/init.out" >&2
  die "pgbench -i failed"
}

# Where the poolers reach PostgreSQL: loopback TCP, or its socket directory.
host_of_server() {
  if [[ $transport == unix ]]; then echo "$dir/cluster/primary"; else echo 127.0.0.1; fi
}

# --- PgBouncer config
pgb_dir=$dir/pgbouncer
if [[ $pgb_password == scram ]]; then
  secret=$(super_sql "SELECT rolpassword FROM pg_authid WHERE rolname = '$CL_APP_USER'")
  [[ $secret == SCRAM-SHA-256\$* ]] || die "could not read the SCRAM verifier of $CL_APP_USER"
  pgb_userlist_desc="app's SCRAM-SHA-256 verifier copied from pg_authid (PgBouncer then logs in to the server with the client's SCRAM keys)"
else
  secret=$CL_APP_PASSWORD
  pgb_userlist_desc="app's plaintext password"
fi
printf '"%s" "%s"\n' "$CL_APP_USER" "$secret" >"$pgb_dir/userlist.txt"
pgb_max_client=$((idle_clients + 1000))
((pgb_max_client < 2000)) && pgb_max_client=2000
cat >"$pgb_dir/pgbouncer.ini" <<EOF
[databases]
app = host=$(host_of_server) port=$pg_port dbname=$CL_APP_DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir = $( [[ $transport == unix ]] && echo "$dir/pgbouncer" || true)
auth_type = scram-sha-256
auth_file = $pgb_dir/userlist.txt
pool_mode = transaction
default_pool_size = $pool_size
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $pgb_max_client
max_db_connections = 0
server_lifetime = 3600
server_idle_timeout = 600
log_connections = $log_conn
log_disconnections = $log_conn
logfile = $pgb_dir/pgbouncer.log
EOF
# Workload 7: TLS from the clients to both poolers, with the same certificate.
tls_wanted=0
[[ " $workloads " == *" 7 "* ]] && tls_wanted=1
if ((tls_wanted)); then
  mkdir -p "$dir/tls"
  make_test_certs "$dir/tls" || die "could not make test certificates (is openssl installed?)"
  cp "$dir/tls/server.crt" "$dir/tls/server.key" "$pgb_dir/"
  cat >>"$pgb_dir/pgbouncer.ini" <<EOF
client_tls_sslmode = allow
client_tls_cert_file = $pgb_dir/server.crt
client_tls_key_file = $pgb_dir/server.key
EOF
fi
if ((is_root)); then
  chown -R postgres: "$pgb_dir"
  chmod 600 "$pgb_dir/userlist.txt"
fi

start_pgbouncer() {
  local log=$pgb_dir/stdout.log
  if ((is_root)); then
    # setpriv execs (no fork), so $! is PgBouncer itself.
    (cd / && exec setpriv --reuid=postgres --regid=postgres --init-groups \
      "$pgbouncer_bin" "$pgb_dir/pgbouncer.ini") </dev/null >>"$log" 2>&1 &
  else
    "$pgbouncer_bin" "$pgb_dir/pgbouncer.ini" </dev/null >>"$log" 2>&1 &
  fi
  pgb_pid=$!
  wait_port 127.0.0.1 "$pgb_port" 30 "$pgb_pid" || {
    tail -n 20 "$pgb_dir/pgbouncer.log" "$log" >&2
    die "pgbouncer did not start"
  }
  cl_log "pgbouncer (pid $pgb_pid) on 127.0.0.1:$pgb_port"
}

# shellcheck disable=SC2317  # also called from cleanup
stop_pgbouncer() {
  [[ -n $pgb_pid ]] || return 0
  # SIGTERM: immediate shutdown in PgBouncer 1.18.
  switchyard_stop "$pgb_pid" 10
  pgb_pid=""
}

# --- Switchyard config
sy_rust_log=info
((log_conn)) || sy_rust_log=warn
sy_conf=$dir/switchyard.toml
cat >"$sy_conf" <<EOF
listen = "127.0.0.1:$sy_port"
auth_method = "scram-sha-256"

[[users]]
name = "$CL_APP_USER"
password = "$CL_APP_PASSWORD"

[databases.app]
hosts = ["$(host_of_server):$pg_port"]
dbname = "$CL_APP_DB"
pool_mode = "transaction"
pool_size = $pool_size
routing = "primary_only"
EOF
if [[ $transport == unix ]]; then
  sed -i "1a listen_unix_dir = \"$dir/sysock\"" "$sy_conf"
fi
if ((tls_wanted)); then
  printf '\n[tls]\ncert = "%s"\nkey = "%s"\n' "$dir/tls/server.crt" "$dir/tls/server.key" >>"$sy_conf"
fi
chmod 600 "$sy_conf"
sy_log=$dir/switchyard.log

start_switchyard() {
  RUST_LOG=$sy_rust_log "$bin" --config "$sy_conf" </dev/null >>"$sy_log" 2>&1 &
  sy_pid=$!
  wait_port 127.0.0.1 "$sy_port" 30 "$sy_pid" || {
    tail -n 20 "$sy_log" >&2
    die "switchyard did not start"
  }
  cl_log "switchyard (pid $sy_pid) on 127.0.0.1:$sy_port"
}

# shellcheck disable=SC2317  # also called from cleanup
stop_switchyard() {
  [[ -n $sy_pid ]] || return 0
  switchyard_stop "$sy_pid" 10
  sy_pid=""
}

start_pgbouncer
start_switchyard

# ------------------------------------------------------------------ workloads
port_of() {
  case $1 in
    A) echo "$pg_port" ;;
    B) echo "$pgb_port" ;;
    C) echo "$sy_port" ;;
  esac
}
pid_of() {
  case $1 in
    A) echo "" ;;
    B) echo "$pgb_pid" ;;
    C) echo "$sy_pid" ;;
  esac
}

# Workload table: id, short name, title, note, percentiles, tpcb, options
# per target ("skip" = not run), seconds per run.
printf 'id\tshort\ttitle\tnote\tpercentiles\ttpcb\topts_A\topts_B\topts_C\tduration\n' >"$dir/workloads.tsv"
add_workload() {
  local IFS=$'\t'
  echo "$*"$'\t'"${wl_duration:-$duration}" >>"$dir/workloads.tsv"
}
add_workload 1 "select-only" "select-only, 32 clients" "" 0 0 \
  "-S -c 32 -j 2" "-S -c 32 -j 2" "-S -c 32 -j 2"
add_workload 2 "TPC-B" "TPC-B-like (read-write), 32 clients" "" 0 1 \
  "-c 32 -j 2" "-c 32 -j 2" "-c 32 -j 2"
add_workload 3 "select-only prepared" "select-only, extended protocol with prepared statements, 32 clients" \
  "PgBouncer 1.18 cannot keep protocol-level prepared statements in transaction mode, so **B runs \`-M simple\`** (the simple query protocol, one round trip per statement) and the B column and the ratios compare Switchyard's prepared run with PgBouncer's simple run." \
  0 0 "-S -M prepared -c 32 -j 2" "-S -M simple -c 32 -j 2" "-S -M prepared -c 32 -j 2"
add_workload 4 "connect per transaction" "select-only, a new connection (startup + SCRAM) per transaction, 16 clients" \
  "pgbench's TPS here includes the connection time. Direct: every transaction forks a backend." \
  0 0 "-S -C -c 16 -j 2" "-S -C -c 16 -j 2" "-S -C -c 16 -j 2"
many_a="-S -c $many -j 2"
many_note="$many clients over $pool_size server connections (B, C); direct opens $many backends (max_connections = $max_conn)."
if ((!direct_many)); then
  many_a=skip
  many_note="$many clients over $pool_size server connections; direct PostgreSQL skipped (DIRECT_MANY=0)."
fi
# Direct, the $many logins (backend fork + SCRAM each) take several seconds
# of the run: give every target of this workload at least 10 s.
wl_duration=$duration
if ((duration < 10)); then
  wl_duration=10
  many_note+=" Runs last 10 s instead of DURATION=$duration s here, so that direct's $many logins fit in the run."
fi
add_workload 5 "$many clients" "select-only, $many clients" "$many_note" 0 0 \
  "$many_a" "-S -c $many -j 2" "-S -c $many -j 2"
wl_duration=""
add_workload 6 "1 client latency" "select-only, 1 client: latency" \
  "Per-transaction latencies from \`pgbench -l\` (p50, p99 over all transactions of the run; median over rounds); \"added over direct\" is the pooler's p50 minus direct's." \
  1 0 "-S -c 1 -j 1 -l" "-S -c 1 -j 1 -l" "-S -c 1 -j 1 -l"

add_workload 7 "select-only over TLS" "select-only, 32 clients, TLS between pgbench and the pooler (sslmode=require)" \
  "The clients talk TLS to the pooler (PgBouncer: client_tls_sslmode = allow; Switchyard: a [tls] table), both with the same RSA-2048 certificate; pooler to PostgreSQL stays plain. Direct is not run (the server has no TLS). The TLS settings are only in the poolers' configs when this workload runs." \
  0 0 "skip" "-S -c 32 -j 2 --tls" "-S -c 32 -j 2 --tls"

printf 'workload\ttarget\tround\tposition\ttps\tlatency_ms\tprocessed\tfailed\trc\terrors\tcpu_ticks\tp50_us\tp99_us\tfile\tuser_ticks\n' >"$dir/runs.tsv"

# Where pgbench connects to a target: 127.0.0.1, or the target's socket directory.
host_of() {
  [[ $transport == tcp ]] && { echo 127.0.0.1; return; }
  case $1 in
    A) echo "$dir/cluster/primary" ;;
    B) echo "$dir/pgbouncer" ;;
    C) echo "$dir/sysock" ;;
  esac
}

# run_pgbench OUTFILE TARGET ARG...: pgbench in the background (so that a signal
# runs the trap at once); returns its exit status.
run_pgbench() {
  local out=$1 port host rc=0 sslmode=disable a
  port=$(port_of "$2")
  host=$(host_of "$2")
  shift 2
  local -a args=()
  # --tls (ours, not pgbench's): connect with sslmode=require.
  for a in "$@"; do
    if [[ $a == --tls ]]; then sslmode=require; else args+=("$a"); fi
  done
  (cd "$dir/runs" && PGSSLMODE=$sslmode exec "$PGBENCH" -h "$host" -p "$port" \
    -U "$CL_APP_USER" "${args[@]}" "$CL_APP_DB") </dev/null >"$out" 2>&1 &
  bench_pid=$!
  wait "$bench_pid" || rc=$?
  bench_pid=""
  return "$rc"
}

field() {
  sed -n "s/$1/\\1/p" "$2" | head -n 1
}

# one_run WORKLOAD TARGET ROUND POSITION OPTIONS TPCB PERCENTILES SECONDS
one_run() {
  local wl=$1 t=$2 round=$3 pos=$4 opts=$5 tpcb=$6 pct=$7 secs=$8
  local port pid name out rc=0 c0="" c1="" ticks="" u0="" u1="" uticks=""
  port=$(port_of "$t")
  pid=$(pid_of "$t")
  name=w$wl-$t-r$round
  out=$dir/runs/$name.out
  if ((tpcb)); then
    super_sql "VACUUM pgbench_branches, pgbench_tellers" >/dev/null
    super_sql "TRUNCATE pgbench_history" >/dev/null
  fi
  super_sql "CHECKPOINT" >/dev/null
  local -a args
  read -r -a args <<<"$opts"
  if ((pct)); then
    args+=(--log-prefix="$dir/runs/$name.log")
  fi
  [[ -n $pid ]] && c0=$(cpu_ticks "$pid") && u0=$(user_ticks "$pid")
  run_pgbench "$out" "$t" -n -T "$secs" "${args[@]}" || rc=$?
  [[ -n $pid ]] && c1=$(cpu_ticks "$pid") && u1=$(user_ticks "$pid")
  [[ -n $c0 && -n $c1 ]] && ticks=$((c1 - c0))
  [[ -n $u0 && -n $u1 ]] && uticks=$((u1 - u0))

  local tps lat processed failed errors p50="" p99=""
  tps=$(field '^tps = \([0-9.]*\).*' "$out")
  lat=$(field '^latency average = \([0-9.]*\) ms.*' "$out")
  processed=$(field '^number of transactions actually processed: \([0-9]*\).*' "$out")
  failed=$(field '^number of failed transactions: \([0-9]*\).*' "$out")
  grep -i -E 'error|abort|fatal|could not' "$out" >"$out.errors" || true
  errors=$(wc -l <"$out.errors")
  [[ $errors == 0 ]] && rm -f "$out.errors"
  if ((pct)); then
    local logs=("$dir/runs/$name.log".*)
    if [[ -f ${logs[0]} ]]; then
      # Column 3 of a pgbench -l line: the transaction's latency in µs.
      read -r p50 p99 < <(cat "${logs[@]}" | awk '{print $3}' | sort -n | awk '
        { v[NR] = $1 }
        END {
          if (NR == 0) { print "", ""; exit }
          i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
          i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
          print v[i50], v[i99]
        }')
      rm -f "${logs[@]}"
    fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$wl" "$t" "$round" "$pos" "$tps" "$lat" "$processed" "$failed" "$rc" "$errors" \
    "$ticks" "$p50" "$p99" "$name" "$uticks" >>"$dir/runs.tsv"
  local extra=""
  [[ -n $p50 ]] && extra=", p50 ${p50} µs"
  [[ -n $ticks && -n $processed && $processed != 0 ]] &&
    extra+=", pooler CPU $(awk -v t="$ticks" -v h="$clk_tck" -v n="$processed" 'BEGIN { printf "%.1f", t * 1000 / h / n * 1000 }') ms/1k tx"
  cl_log "  w$wl round $round $t: tps ${tps:-?}, latency ${lat:-?} ms, failed ${failed:-?}, exit $rc$extra"
  if ((rc != 0 || errors != 0)) || [[ -z $processed || $processed == 0 || ${failed:-0} != 0 ]]; then
    cl_log "  w$wl round $round $t: PROBLEM, pgbench said:"
    grep -v -E '^(transaction type|scaling factor|query mode|number of clients|number of threads|maximum number|duration|pgbench \(|starting vacuum|end\.)' "$out" |
      head -n 15 >&2 || true
  fi
}

clk_tck=$(getconf CLK_TCK)
targets=(A B C)

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
if ((warmup > 0)); then
  for t in "${targets[@]}"; do
    cl_log "warm-up ${warmup}s on $t"
    run_pgbench "$dir/runs/warmup-$t.out" "$t" -n -S -c 20 -j 2 -T "$warmup" ||
      cl_log "warm-up on $t: pgbench exit status $? (see below)"
  done
fi

t_bench=$SECONDS
for wl in $workloads; do
  # (not IFS=tab: read would merge the empty fields)
  IFS=$'\x1f' read -r short pct tpcb oa ob oc secs < <(awk -F'\t' -v OFS=$'\x1f' -v id="$wl" \
    '$1 == id {print $2, $5, $6, $7, $8, $9, $10}' "$dir/workloads.tsv")
  cl_log "workload $wl ($short): A [$oa]  B [$ob]  C [$oc], ${secs}s x $rounds round(s)"
  for ((r = 1; r <= rounds; r++)); do
    for ((i = 0; i < 3; i++)); do
      t=${targets[$(((i + r - 1) % 3))]}
      case $t in A) o=$oa ;; B) o=$ob ;; C) o=$oc ;; esac
      [[ $o == skip ]] && continue
      one_run "$wl" "$t" "$r" "$((i + 1))" "$o" "$tpcb" "$pct" "$secs"
    done
  done
done
cl_log "workloads done in $((SECONDS - t_bench))s"
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

# Pooler log check (before the restarts of the memory test).
count_lines() {
  local n
  n=$(grep -c -E "$1" "$2" 2>/dev/null) || true
  echo "${n:-0}"
}
sy_warn=$(count_lines '\b(WARN|ERROR)\b' "$sy_log")
pgb_warn=$(count_lines '(WARNING|ERROR|FATAL)' "$pgb_dir/pgbouncer.log")
log_summary="Switchyard log during the workloads: $sy_warn WARN/ERROR line(s)"
if ((sy_warn > 0)); then
  log_summary+="; first ones: $(grep -E '\b(WARN|ERROR)\b' "$sy_log" | sed 's/\x1b\[[0-9;]*m//g' | head -n 3 | tr '\n' ' ' | sed 's/|/\\|/g')"
fi
log_summary+="\\nPgBouncer log during the workloads: $pgb_warn WARNING/ERROR/FATAL line(s)"
if ((pgb_warn > 0)); then
  log_summary+="; first ones: $(grep -E '(WARNING|ERROR|FATAL)' "$pgb_dir/pgbouncer.log" | head -n 3 | tr '\n' ' ' | sed 's/|/\\|/g')"
fi

# ------------------------------------------------------------------ idle clients
printf 'pooler\tclients\tconnected\tfailed\tseconds\trss_before_kb\trss_with_kb\trss_after_kb\tper_client_kb\tquery_ok\n' >"$dir/idle.tsv"

# idle_test NAME PORT START_FN STOP_FN PIDVAR
idle_test() {
  local name=$1 port=$2 start_fn=$3 stop_fn=$4 pidvar=$5
  local pid before with after ready="" out=$dir/idle-$name.out qok=no
  $stop_fn
  $start_fn
  pid=${!pidvar}
  "$PSQL" -X -q -A -t -w -h 127.0.0.1 -p "$port" -U "$CL_APP_USER" -d "$CL_APP_DB" \
    -c "SELECT 1" >/dev/null 2>&1 || cl_log "idle test: SELECT 1 through $name failed"
  sleep 1
  before=$(rss_kb "$pid")
  cl_log "idle test: $idle_clients clients to $name (RSS before ${before} kB)"
  python3 "$here/idle_clients.py" --port "$port" --user "$CL_APP_USER" \
    --password "$CL_APP_PASSWORD" --dbname "$CL_APP_DB" --clients "$idle_clients" \
    </dev/null >"$out" 2>"$out.err" &
  idle_pid=$!
  local deadline=$((SECONDS + 300))
  while :; do
    ready=$(grep '^READY' "$out" 2>/dev/null || true)
    [[ -n $ready ]] && break
    if ! kill -0 "$idle_pid" 2>/dev/null; then
      cl_log "idle test: client exited early: $(cat "$out.err")"
      break
    fi
    ((SECONDS < deadline)) || {
      cl_log "idle test: clients not ready after 300s"
      break
    }
    sleep 0.5
  done
  sleep "$idle_settle"
  with=$(rss_kb "$pid")
  if "$PSQL" -X -q -A -t -w -h 127.0.0.1 -p "$port" -U "$CL_APP_USER" -d "$CL_APP_DB" \
    -c "SELECT 1" >/dev/null 2>"$dir/idle-$name.psql.err"; then
    qok=yes
  else
    qok="no: $(head -n 1 "$dir/idle-$name.psql.err")"
  fi
  kill -TERM "$idle_pid" 2>/dev/null || true
  wait "$idle_pid" 2>/dev/null || true
  idle_pid=""
  sleep "$idle_settle"
  after=$(rss_kb "$pid")
  local connected failed secs per
  read -r _ connected _ failed _ secs <<<"${ready:-READY 0 FAILED ? SECONDS ?}"
  per=$(awk -v a="$before" -v b="$with" -v n="$connected" 'BEGIN { if (n > 0) printf "%.2f", (b - a) / n }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$idle_clients" "$connected" "$failed" \
    "$secs" "$before" "$with" "$after" "$per" "$qok" >>"$dir/idle.tsv"
  cl_log "idle test $name: $connected connected, $failed failed in ${secs}s; RSS ${before} -> ${with} -> ${after} kB; ${per} KB/client; query while loaded: $qok"
  if [[ -s $out.err ]]; then
    cl_log "idle test $name: client errors: $(head -n 5 "$out.err" | tr '\n' ' ')"
    echo "idle test $name: $(head -n 3 "$out.err" | tr '\n' ' ')" >>"$dir/problems.txt"
  fi
  $stop_fn
}

if ((idle_clients > 0)); then
  idle_test PgBouncer "$pgb_port" start_pgbouncer stop_pgbouncer pgb_pid
  idle_test Switchyard "$sy_port" start_switchyard stop_switchyard sy_pid
fi

# ------------------------------------------------------------------ report
git_desc=$(git -C "$repo" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
git_date=$(git -C "$repo" log -1 --format=%cd --date=short 2>/dev/null || echo "?")
sy_dirty=$(git -C "$repo" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
sy_version="$("$bin" --version 2>/dev/null | head -n 1), git $git_desc ($git_date)"
((sy_dirty > 0)) && sy_version+=", built with $sy_dirty uncommitted change(s) in src/ or Cargo files"
note=${BENCH_NOTE:-}
if [[ $transport == unix ]]; then
  [[ -n $note ]] && note+="\\n"
  note+="**Unix-domain sockets on both sides**: pgbench to each target over its socket, both poolers to PostgreSQL over its socket (\`local all all trust\` in pg_hba.conf, so server logins skip SCRAM; direct pgbench logins too)."
fi
if ((duration < 20 || rounds < 3)); then
  [[ -n $note ]] && note+="\\n"
  note+="**Short run** (DURATION=$duration, ROUNDS=$rounds): not representative."
fi
cmd="integration/bench/compare.sh"
for v in DURATION ROUNDS WORKLOADS IDLE_CLIENTS WARMUP SCALE MANY_CLIENTS DIRECT_MANY LOG_CONNECTIONS PGB_PASSWORD TRANSPORT; do
  [[ -n ${!v:-} ]] && cmd="$v=${!v} $cmd"
done
if [[ $pgb_password == scram ]]; then
  auth_note="PgBouncer: \`auth_type = scram-sha-256\` with the SCRAM verifier in userlist.txt; Switchyard: \`auth_method = \"scram-sha-256\"\` with the plaintext password, from which it derives the SCRAM keys once at startup; direct: \`pg_hba\` scram-sha-256"
else
  auth_note="PgBouncer: \`auth_type = scram-sha-256\` with the plaintext password in userlist.txt (PgBouncer then runs PBKDF2 on every client login); Switchyard: \`auth_method = \"scram-sha-256\"\` with the plaintext password; direct: \`pg_hba\` scram-sha-256"
fi
{
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'duration\t%s\nrounds\t%s\nscale\t%s\nwarmup\t%s\nclk_tck\t%s\nnproc\t%s\n' \
    "$duration" "$rounds" "$scale" "$warmup" "$clk_tck" "$(nproc)"
  printf 'cpu\t%s × %s\n' "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  printf 'memory\t%s\n' "$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  printf 'kernel\t%s\n' "$(uname -sr)"
  printf 'os\t%s\n' "$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || echo '?')"
  printf 'postgres_version\t%s\n' "$("$PG_BIN/postgres" --version)"
  printf 'pgbouncer_version\t%s\n' "$("$pgbouncer_bin" --version | head -n 1)"
  printf 'switchyard_version\t%s\n' "$sy_version"
  printf 'loadavg_start\t%s\nloadavg_end\t%s\n' "$loadavg_start" "$loadavg_end"
  printf 'elapsed\t%s\n' "$(((SECONDS - t_start) / 60)) min $(((SECONDS - t_start) % 60)) s"
  printf 'idle_settle\t%s\n' "$idle_settle"
  printf 'workdir\t%s\n' "$dir"
  printf 'note\t%s\n' "$note"
  printf 'auth_note\t%s\n' "$auth_note"
  printf 'log_summary\t%s\n' "$log_summary"
  printf 'pg_settings\t%s\n' "\`fsync = on\`, \`shared_buffers = 128MB\`, \`max_connections = $max_conn\`, \`wal_level = replica\`, everything else default; \`pg_hba.conf\`: \`host all all 127.0.0.1/32 scram-sha-256\`."
  printf 'pgbouncer_ini\t%s\n' "$pgb_dir/pgbouncer.ini"
  printf 'pgb_userlist\t%s\n' "$pgb_userlist_desc"
  printf 'switchyard_toml\t%s\n' "$sy_conf"
  printf 'sy_env\t%s\n' "RUST_LOG=$sy_rust_log; every key not shown has its default (worker_threads = 0, checkout_timeout_ms = 5000, server_idle_timeout_ms = 600000, server_lifetime_ms = 3600000, …)"
  printf 'command\t%s\n' "$cmd"
} >"$dir/meta.tsv"

python3 "$here/report.py" "$dir" >"$dir/report.md"
echo
cat "$dir/report.md"
if [[ $output != - ]]; then
  [[ $output == /* ]] || output=$repo/$output
  cp -- "$dir/report.md" "$output"
  cl_log "report written to $output"
fi
