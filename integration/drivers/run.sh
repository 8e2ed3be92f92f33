#!/usr/bin/env bash
# Driver matrix: real client drivers against Switchyard (transaction pooling,
# pool_size 5, routing read_write, health checks every 100 ms) in front of a
# throw-away primary + streaming replica. Every suite opens 20+ connections,
# prepares statements server-side, checks every value it reads back, and exits
# non-zero on any mismatch/error. Reads after a client's own writes must see
# them (read-your-writes is per client connection, so each suite only expects
# that on the connection that wrote, or reads in a read-write transaction).
#
#   psycopg   Python, psycopg 3 (binary), prepare_threshold=0, threads
#   asyncpg   Python, asyncpg, pool of 20+ connections, named statements
#   node-pg   Node.js, node-postgres, named queries, pg.Client and pg.Pool
#   pgjdbc    Java, pgJDBC (Debian libpostgresql-jdbc-java), prepareThreshold=1
#
# Each suite installs its dependencies under this directory (git-ignored, done
# once and skipped while the pinned versions are unchanged): python/.venv,
# node/node_modules, java/build.
#
# Usage: integration/drivers/run.sh [--direct | --switchyard] [SUITE...]
#
#   (default)     every suite directly against the primary first (proves the
#                 suite itself right), then through Switchyard: a suite that
#                 passes directly and fails through Switchyard points at
#                 Switchyard
#   --direct      only directly against the primary (Switchyard is not built
#                 or started)
#   --switchyard  only through Switchyard
#   SUITE...      a subset of: psycopg asyncpg node-pg pgjdbc (default: all)
#   --exec CMD... instead of the suites, run CMD (with the SUITE_* variables
#                 below, SUITE_PRIMARY_PORT too, and python/.venv installed)
#                 once through Switchyard, or against the primary with
#                 --direct before --exec; for reproductions, e.g.
#                 RUST_LOG=switchyard=debug DRIVERS_KEEP_LOG=/tmp/sy.log \
#                   integration/drivers/run.sh --exec \
#                   integration/drivers/python/.venv/bin/python \
#                   integration/drivers/repro/pipeline_read_then_write.py
#
# repro/ holds minimal reproductions of Switchyard bugs the suites ran into
# (each script says how to run it, with --exec).
#
# Everything (Switchyard, the cluster, the temp dir) is removed on exit, also
# on failure or Ctrl-C. Exit status 0 only if every suite passed.
#
# Environment:
#   DRIVERS_PRIMARY_PORT   primary port (default 25452)
#   DRIVERS_REPLICA_PORT   replica port (default 25453)
#   DRIVERS_PORT           Switchyard listen port (default 6452)
#   DRIVERS_POOL_SIZE      Switchyard pool_size (default 5)
#   DRIVERS_SUITE_TIMEOUT  seconds before a suite is killed (default 150); 15 s
#                          earlier the suite prints what each of its
#                          connections is stuck in and fails
#   DRIVERS_KEEP_LOG       copy Switchyard's log to this file before cleanup
#   DRIVERS_TLS            1: TLS on both sides (servers with ssl = on, Switchyard with a
#                          [tls] table and server_tls = "verify-full"; throw-away openssl
#                          certificates); the CA's file is SUITE_SSLROOTCERT
#                          (python/tls_modes.py uses it; the suites keep sslmode=disable)
#   SUITE_CLIENTS          connections per suite (default 24)
#   SUITE_ITERATIONS       iterations per connection (suite defaults)
#   SUITE_SEED             random seed of the suites (default: random, printed)
#   SUITE_SKIP             operations to leave out, comma-separated (names in
#                          each suite's header): a diagnostic aid only
#   SWITCHYARD_BIN         use this binary instead of `cargo build --release`
#   PG_FSYNC               fsync of the cluster, on|off (default off here)
#   RUST_LOG               Switchyard log filter (default info)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/cluster.sh
. "$here/../lib/cluster.sh"
CL_LOG_TAG=drivers

ALL_SUITES=(psycopg asyncpg node-pg pgjdbc)
PGJDBC_JAR=/usr/share/java/postgresql.jar

targets=(direct switchyard)
suites=()
exec_cmd=()
while (($# > 0)); do
  arg=$1
  shift
  case $arg in
    --direct) targets=(direct) ;;
    --switchyard) targets=(switchyard) ;;
    --exec)
      exec_cmd=("$@")
      if ((${#exec_cmd[@]} == 0)); then
        echo "run.sh: --exec needs a command" >&2
        exit 2
      fi
      [[ ${targets[*]} == direct ]] || targets=(switchyard)
      break
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "run.sh: unknown option '$arg' (try --help)" >&2
      exit 2
      ;;
    *)
      if [[ " ${ALL_SUITES[*]} " != *" $arg "* ]]; then
        echo "run.sh: unknown suite '$arg' (suites: ${ALL_SUITES[*]})" >&2
        exit 2
      fi
      suites+=("$arg")
      ;;
  esac
done
if ((${#exec_cmd[@]} > 0)); then
  suites=(psycopg) # only for its dependencies (python/.venv)
fi
((${#suites[@]} > 0)) || suites=("${ALL_SUITES[@]}")

pg_port=${DRIVERS_PRIMARY_PORT:-25452}
replica_port=${DRIVERS_REPLICA_PORT:-25453}
sy_port=${DRIVERS_PORT:-6452}
pool_size=${DRIVERS_POOL_SIZE:-5}
suite_timeout=${DRIVERS_SUITE_TIMEOUT:-150}
export PG_FSYNC=${PG_FSYNC:-off}
t_start=$SECONDS

for v in pool_size suite_timeout; do
  if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: $v must be a positive integer, not '${!v}'" >&2
    exit 2
  fi
done
if ((suite_timeout < 30)); then
  echo "run.sh: DRIVERS_SUITE_TIMEOUT must be at least 30" >&2
  exit 2
fi
if [[ " ${targets[*]} " == *" switchyard "* ]] && port_open 127.0.0.1 "$sy_port"; then
  echo "run.sh: port $sy_port on 127.0.0.1 is already in use (set DRIVERS_PORT)" >&2
  exit 1
fi
if [[ $(id -u) == 0 ]] && ! id postgres >/dev/null 2>&1; then
  echo "run.sh: running as root needs a 'postgres' OS user for the cluster" >&2
  exit 1
fi

# ---------------------------------------------------------------- installs

apt_updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ((apt_updated == 0)); then
    cl_log "apt-get update"
    apt-get update -qq || return 1
    apt_updated=1
  fi
  cl_log "apt-get install $*"
  apt-get install -y -qq "$@" || return 1
}

sha_of() {
  cat "$@" | sha256sum | cut -d' ' -f1
}

# python/.venv with the pinned python/requirements.txt (both Python suites).
install_python() {
  local venv=$here/python/.venv req=$here/python/requirements.txt sum
  sum=$(sha_of "$req")
  if [[ -x $venv/bin/python && $(cat "$venv/.sy-installed" 2>/dev/null) == "$sum" ]]; then
    return 0
  fi
  command -v python3 >/dev/null || apt_install python3 || return 1
  rm -rf -- "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf -- "$venv"
    apt_install python3-venv || return 1
    python3 -m venv "$venv" || return 1
  fi
  cl_log "pip install -r python/requirements.txt into python/.venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" || return 1
  echo "$sum" >"$venv/.sy-installed"
}

# node/node_modules from the committed package-lock.json.
install_node() {
  local dir=$here/node sum
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm || return 1
  fi
  sum=$(sha_of "$dir/package.json" "$dir/package-lock.json")
  if [[ $(cat "$dir/node_modules/.sy-installed" 2>/dev/null) == "$sum" ]]; then
    return 0
  fi
  cl_log "npm ci in node/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "$sum" >"$dir/node_modules/.sy-installed"
}

# java/build/DriverSuite.class, compiled against the Debian pgJDBC jar.
install_java() {
  local dir=$here/java sum
  [[ -f $PGJDBC_JAR ]] || apt_install libpostgresql-jdbc-java || return 1
  if ! command -v javac >/dev/null || ! command -v java >/dev/null; then
    apt_install default-jdk-headless || return 1
  fi
  sum=$(sha_of "$dir/DriverSuite.java" "$PGJDBC_JAR")
  if [[ -f $dir/build/DriverSuite.class && $(cat "$dir/build/.sy-installed" 2>/dev/null) == "$sum" ]]; then
    return 0
  fi
  cl_log "javac java/DriverSuite.java"
  rm -rf -- "$dir/build"
  mkdir -p "$dir/build"
  javac -encoding UTF-8 -cp "$PGJDBC_JAR" -d "$dir/build" "$dir/DriverSuite.java" || return 1
  echo "$sum" >"$dir/build/.sy-installed"
}

suite_install() {
  case $1 in
    psycopg | asyncpg) install_python ;;
    node-pg) install_node ;;
    pgjdbc) install_java ;;
  esac
}

suite_cmd() {
  case $1 in
    psycopg) suite_argv=("$here/python/.venv/bin/python" "$here/python/psycopg_suite.py") ;;
    asyncpg) suite_argv=("$here/python/.venv/bin/python" "$here/python/asyncpg_suite.py") ;;
    node-pg) suite_argv=(node "$here/node/suite.js") ;;
    pgjdbc) suite_argv=(java -cp "$here/java/build:$PGJDBC_JAR" DriverSuite) ;;
  esac
}

# ---------------------------------------------------------------- cleanup

dir=""
sy_pid=""
sy_log=""
suite_pid=""
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  cl_stop_pid "$suite_pid" "the running suite"
  cl_stop_switchyard "$sy_pid" "$sy_log" "$rc" "${DRIVERS_KEEP_LOG:-}"
  if [[ -n $dir ]]; then
    cl_log "stopping the cluster and removing $dir"
    [[ -d $dir/cluster ]] && cluster_down "$dir/cluster"
    rm -rf -- "$dir"
  fi
  cl_report "$rc" "$t_start"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- setup

results=()
failed=0
installed=()
t0=$SECONDS
for s in "${suites[@]}"; do
  if suite_install "$s"; then
    installed+=("$s")
  else
    cl_log "installing the dependencies of $s failed"
    results+=("$(printf '%-11s %-8s %-5s %s' install "$s" FAIL 'dependencies could not be installed')")
    failed=1
  fi
done
cl_log "dependencies ready ($((SECONDS - t0))s)"

bin=""
if [[ " ${targets[*]} " == *" switchyard "* ]]; then
  bin=$(switchyard_build "$repo")
fi

dir=$(mktemp -d /tmp/switchyard-drivers.XXXXXX)
chmod 755 "$dir"
cluster_up "$dir/cluster" "$pg_port" "$replica_port"

if [[ -n $bin ]]; then
  config=$dir/switchyard.toml
  write_switchyard_config "$config" "127.0.0.1:$sy_port" "$pool_size" transaction \
    "127.0.0.1:$pg_port" "127.0.0.1:$replica_port"
  # Health checks (replica replay positions) every 100 ms instead of 1 s: a client's
  # reads become eligible for the replica sooner after its writes (read-your-writes), so
  # more of the suites' traffic goes to the replica.
  printf 'routing = "read_write"\nhealth_check_interval_ms = 100\n' >>"$config"
  if [[ ${DRIVERS_TLS:-0} == 1 ]]; then
    switchyard_tls_both_sides "$config" "$dir/tls" \
      "$dir/cluster/primary:$pg_port" "$dir/cluster/replica1:$replica_port"
    export SUITE_SSLROOTCERT=$dir/tls/ca.crt
  fi
  sy_log=$dir/switchyard.log
  RUST_LOG=${RUST_LOG:-info} "$bin" --config "$config" </dev/null >>"$sy_log" 2>&1 &
  sy_pid=$!
  wait_port 127.0.0.1 "$sy_port" 30 "$sy_pid"
  cl_log "switchyard (pid $sy_pid) on 127.0.0.1:$sy_port: pool_size $pool_size, transaction mode, routing read_write, health checks every 100 ms"
fi

# Client environment: only what we set.
for v in "${_CL_SCRUB_ENV[@]}"; do
  unset "$v"
done
export SUITE_USER=$CL_APP_USER SUITE_PASSWORD=$CL_APP_PASSWORD SUITE_DB=$CL_APP_DB
export SUITE_HOST=127.0.0.1

# ---------------------------------------------------------------- suites

# Transaction counter of the app database on one server (direct connection).
xacts() {
  PGPASSWORD=$CL_APP_PASSWORD PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -A -t -w -h 127.0.0.1 -p "$1" \
    -U "$CL_APP_USER" -d "$CL_APP_DB" \
    -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()" \
    2>/dev/null || echo "?"
}

# run_suite TARGET SUITE
run_suite() {
  local target=$1 name=$2 port rc=0 t1=$SECONDS out
  case $target in
    direct) port=$pg_port ;;
    switchyard) port=$sy_port ;;
  esac
  out=$dir/$target-$name.out
  suite_cmd "$name"
  local before_p before_r
  before_p=$(xacts "$pg_port")
  before_r=$(xacts "$replica_port")
  echo
  echo "=== [$target/$name] ${suite_argv[*]##*/} -> 127.0.0.1:$port"
  # In the background so that a signal to this script runs the trap at once.
  SUITE_TARGET=$target SUITE_PORT=$port SUITE_DEADLINE=$((suite_timeout - 15)) \
    timeout --kill-after=10 "$suite_timeout" "${suite_argv[@]}" </dev/null >"$out" 2>&1 &
  suite_pid=$!
  wait "$suite_pid" || rc=$?
  suite_pid=""
  cat "$out"
  local after_p after_r
  after_p=$(xacts "$pg_port")
  after_r=$(xacts "$replica_port")
  if [[ $before_p$before_r$after_p$after_r =~ ^[0-9]+$ ]]; then
    # pg_stat_database is updated lazily (up to ~1 s late); indicative only.
    echo "=== [$target/$name] server transactions (pg_stat_database): primary" \
      "$((after_p - before_p)), replica $((after_r - before_r))"
  fi
  local verdict=PASS note=""
  if ((rc != 0)); then
    verdict=FAIL
    failed=1
    note="exit status $rc"
    ((rc == 3)) && note="deadline passed (hung?): see the unfinished connections above"
    ((rc == 124 || rc == 137)) && note="killed after ${suite_timeout}s"
  fi
  if [[ $target == switchyard ]] && ! kill -0 "$sy_pid" 2>/dev/null; then
    verdict=FAIL
    failed=1
    note="${note:+$note; }switchyard exited"
  fi
  echo "=== [$target/$name] $verdict ($((SECONDS - t1))s)${note:+: $note}"
  results+=("$(printf '%-11s %-8s %-5s %4ss %s' "$target" "$name" "$verdict" "$((SECONDS - t1))" "$note")")
}

if ((${#exec_cmd[@]} > 0)); then
  rc=0
  export SUITE_TARGET=${targets[0]} SUITE_PRIMARY_PORT=$pg_port
  if [[ $SUITE_TARGET == direct ]]; then
    export SUITE_PORT=$pg_port
  else
    export SUITE_PORT=$sy_port
  fi
  echo "=== [exec] ${exec_cmd[*]} (SUITE_PORT=$SUITE_PORT, $SUITE_TARGET)"
  "${exec_cmd[@]}" </dev/null &
  suite_pid=$!
  wait "$suite_pid" || rc=$?
  suite_pid=""
  echo "=== [exec] exit status $rc"
  exit "$rc"
fi

for target in "${targets[@]}"; do
  for s in "${installed[@]}"; do
    if [[ $target == switchyard ]] && ! kill -0 "$sy_pid" 2>/dev/null; then
      results+=("$(printf '%-11s %-8s %-5s %s' "$target" "$s" FAIL 'not run: switchyard is not running')")
      failed=1
      continue
    fi
    run_suite "$target" "$s"
  done
done

if [[ -n $sy_log ]]; then
  echo
  echo "=== switchyard log: $(grep -c -E '\b(WARN|ERROR)\b' "$sy_log" || true) WARN/ERROR lines"
  grep -E '\b(WARN|ERROR)\b' "$sy_log" | sed 's/\x1b\[[0-9;]*m//g' | head -n 20 || true
fi

echo
echo "=== drivers summary (pool_size $pool_size, transaction mode, routing read_write;" \
  "${SUITE_CLIENTS:-24} connections per suite)"
for r in "${results[@]}"; do
  echo "  $r"
done
if ((failed)); then
  echo "=== FAILED"
  exit 1
fi
echo "=== OK"
