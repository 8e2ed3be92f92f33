#!/usr/bin/env bash
# The result cache, side by side in one sitting: A = PostgreSQL directly,
# B = PgBouncer, C = Switchyard with the cache off, D = Switchyard with the
# cache on (invalidation = "wal": a temporary test_decoding slot), all in front
# of one primary (wal_level = logical, fsync on) loaded with `pgbench -i -s $SCALE`.
#
# Workloads (pgbench custom scripts, 32 clients, -j 2, simple protocol):
#   read  \set aid random_zipfian(1, 100000 * :scale, 1.1)
#         SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
#   mix   the read script with weight 9 and, with weight 1, an
#         UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid
#         on the same keys (90 % reads, 10 % updates)
# $ROUNDS rounds, the target order rotated every round, $DURATION s per run,
# each target warmed for $WARMUP s before each run (the cache fills then).
# D starts fresh (empty cache) before each of its runs; the others stay up.
#
# Reported per workload and target: TPS (median over rounds, and each round),
# the pooler's CPU (utime+stime) per 1,000 transactions, D's hit ratio over
# the run (SHOW CACHE before and after), and after the read runs D's entries,
# accounted bytes per entry and RSS growth per entry over an empty cache.
#
# Usage: integration/bench/cache.sh        (about 10 minutes with the defaults)
# Environment: DURATION (20), ROUNDS (3), WARMUP (5), SCALE (10), CLIENTS (32),
#   WORKLOADS ("read mix"), TARGETS ("A B C D"; a subset leaves rows empty),
#   OUTPUT (docs/benchmarks-cache.md; "-" prints only), SWITCHYARD_BIN,
#   BENCH_PRIMARY_PORT (25492), BENCH_PGBOUNCER_PORT (6492), BENCH_SWITCHYARD_PORT
#   (6493; D uses the next port).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/../lib/cluster.sh
. "$repo/integration/lib/cluster.sh"
CL_LOG_TAG=cache-bench

[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; }

duration=${DURATION:-20}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-5}
scale=${SCALE:-10}
clients=${CLIENTS:-32}
output=${OUTPUT:-docs/benchmarks-cache.md}
pg_port=${BENCH_PRIMARY_PORT:-25492}
pgb_port=${BENCH_PGBOUNCER_PORT:-6492}
sy_port=${BENCH_SWITCHYARD_PORT:-6493}
cache_port=$((sy_port + 1))
pool_size=20
t_start=$SECONDS

die() {
  echo "cache.sh: $*" >&2
  exit 2
}
for p in "$pg_port" "$pgb_port" "$sy_port" "$cache_port"; do
  port_open 127.0.0.1 "$p" && die "port $p on 127.0.0.1 is already in use"
done
PGBENCH=$PG_BIN/pgbench
PSQL=$PG_BIN/psql
is_root=0
[[ $(id -u) == 0 ]] && is_root=1
pgbouncer_bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
if [[ ! -x $pgbouncer_bin ]]; then
  ((is_root)) || die "pgbouncer is not installed"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >&2
  pgbouncer_bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
fi

dir=""
pids=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  for p in "${pids[@]}"; do switchyard_stop "$p" 10; done
  if [[ -n $dir ]]; then
    cluster_down "$dir/cluster"
    rm -rf -- "$dir"
  fi
  cl_log "done, exit $rc (total $((SECONDS - t_start))s)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

bin=$(switchyard_build "$repo")
dir=$(mktemp -d /tmp/switchyard-cache-bench.XXXXXX)
chmod 755 "$dir"
mkdir "$dir/runs" "$dir/pgbouncer"
cp -- "$bin" "$dir/switchyard"
bin=$dir/switchyard

cluster_up "$dir/cluster" "$pg_port"
printf '\n# integration/bench/cache.sh\nwal_level = logical\n' >>"$dir/cluster/primary/data/postgresql.conf"
pg_as_owner pg_ctl -D "$dir/cluster/primary/data" -l "$dir/cluster/primary.log" -w -t 60 -m fast restart \
  >>"$dir/cluster/primary.log" 2>&1 || die "restart with wal_level = logical failed"
for v in "${_CL_SCRUB_ENV[@]}"; do unset "$v"; done
export PGPASSWORD=$CL_APP_PASSWORD PGCONNECT_TIMEOUT=10 PGSSLMODE=disable
super_sql() { _cl_psql_super "$dir/cluster/primary" "$pg_port" "$CL_APP_DB" -c "$1"; }
cl_log "pgbench -i -s $scale"
"$PGBENCH" -i -s "$scale" -q -h 127.0.0.1 -p "$pg_port" -U "$CL_APP_USER" "$CL_APP_DB" >"$dir/init.out" 2>&1 ||
  { cat "$dir/init.out" >&2; die "pgbench -i failed"; }

cat >"$dir/read.sql" <<'EOF'
\set aid random_zipfian(1, 100000 * :scale, 1.1)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
EOF
cat >"$dir/update.sql" <<'EOF'
\set aid random_zipfian(1, 100000 * :scale, 1.1)
\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
EOF

# --- PgBouncer (plaintext password in its userlist; transaction mode, pool 20)
pgb_dir=$dir/pgbouncer
pgbouncer_up "$pgb_dir" "$pgb_port" "$pg_port" "$pool_size" || die "pgbouncer did not start"
pgb_pid=$PGB_PID
pids+=("$pgb_pid")

# --- Switchyard: C (cache off) and D (cache on), same settings otherwise
sy_config() { # PORT CACHE(0|1)
  cat <<EOF
listen = "127.0.0.1:$1"
auth_method = "scram-sha-256"
admin_users = ["$CL_APP_USER"]

[[users]]
name = "$CL_APP_USER"
password = "$CL_APP_PASSWORD"

[databases.app]
hosts = ["127.0.0.1:$pg_port"]
dbname = "$CL_APP_DB"
pool_mode = "transaction"
pool_size = $pool_size

[databases.app.cache]
enabled = $([[ $2 == 1 ]] && echo true || echo false)
invalidation = "wal"
EOF
}
sy_config "$sy_port" 0 >"$dir/off.toml"
sy_config "$cache_port" 1 >"$dir/on.toml"
chmod 600 "$dir/off.toml" "$dir/on.toml"
start_sy() { # CONFIG PORT -> pid in $started
  RUST_LOG=warn "$bin" --config "$1" </dev/null >>"$dir/switchyard.log" 2>&1 &
  started=$!
  pids+=("$started")
  wait_port 127.0.0.1 "$2" 30 "$started" || { tail -n 20 "$dir/switchyard.log" >&2; die "switchyard did not start"; }
}
start_sy "$dir/off.toml" "$sy_port"
off_pid=$started
on_pid=""

# SHOW CACHE of D: "hits misses entries bytes serving"
show_cache() {
  "$PSQL" -X -A -t -F ' ' -h 127.0.0.1 -p "$cache_port" -U "$CL_APP_USER" -d switchyard -c "SHOW CACHE" |
    awk '{print $8, $9, $5, $6, $3}'
}
start_cache() {
  [[ -n $on_pid ]] && switchyard_stop "$on_pid" 10
  start_sy "$dir/on.toml" "$cache_port"
  on_pid=$started
  local t=0
  until [[ $(show_cache | awk '{print $5}') == t ]]; do
    ((t++ < 100)) || die "the cache of D never started serving"
    sleep 0.1
  done
}

port_of() { case $1 in A) echo "$pg_port" ;; B) echo "$pgb_port" ;; C) echo "$sy_port" ;; D) echo "$cache_port" ;; esac; }
pid_of() { case $1 in A) echo "" ;; B) echo "$pgb_pid" ;; C) echo "$off_pid" ;; D) echo "$on_pid" ;; esac; }
scripts_of() {
  case $1 in
    read) echo "-f $dir/read.sql" ;;
    mix) echo "-f $dir/read.sql@9 -f $dir/update.sql@1" ;;
  esac
}

clk_tck=$(getconf CLK_TCK)
printf 'workload\ttarget\tround\ttps\tfailed\tcpu_ticks\tprocessed\thit_ratio\tentries\tbytes\trss_kb0\trss_kb1\n' >"$dir/runs.tsv"
# one_run WORKLOAD TARGET ROUND
one_run() {
  local wl=$1 t=$2 round=$3 port pid out c0="" c1="" ticks="" before="" after="" rss0="" rss1=""
  local -a scripts
  read -r -a scripts <<<"$(scripts_of "$wl")"
  [[ $t == D ]] && start_cache
  port=$(port_of "$t")
  pid=$(pid_of "$t")
  [[ -n $pid ]] && rss0=$(rss_kb "$pid")
  super_sql "CHECKPOINT" >/dev/null
  "$PGBENCH" -n -h 127.0.0.1 -p "$port" -U "$CL_APP_USER" -c "$clients" -j 2 -T "$warmup" "${scripts[@]}" "$CL_APP_DB" \
    >"$dir/runs/warm-$wl-$t-$round.out" 2>&1 || true
  [[ $t == D ]] && before=$(show_cache)
  [[ -n $pid ]] && c0=$(cpu_ticks "$pid")
  out=$dir/runs/$wl-$t-$round.out
  "$PGBENCH" -n -h 127.0.0.1 -p "$port" -U "$CL_APP_USER" -c "$clients" -j 2 -T "$duration" "${scripts[@]}" "$CL_APP_DB" \
    >"$out" 2>&1 || cl_log "pgbench exit $? on $t"
  [[ -n $pid ]] && c1=$(cpu_ticks "$pid") && rss1=$(rss_kb "$pid")
  [[ -n $c0 && -n $c1 ]] && ticks=$((c1 - c0))
  local tps processed failed ratio="" entries="" bytes=""
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -n 1)
  processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
  if [[ $t == D ]]; then
    after=$(show_cache)
    read -r ratio entries bytes < <(awk -v b="$before" -v a="$after" 'BEGIN {
      split(b, x, " "); split(a, y, " "); h = y[1] - x[1]; m = y[2] - x[2];
      printf "%.3f %s %s\n", (h + m) ? h / (h + m) : 0, y[3], y[4] }')
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$t" "$round" "$tps" "${failed:-0}" \
    "$ticks" "$processed" "$ratio" "$entries" "$bytes" "$rss0" "$rss1" >>"$dir/runs.tsv"
  cl_log "  $wl round $round $t: tps ${tps:-?}, failed ${failed:-?}${ratio:+, hit ratio $ratio}"
}

read -r -a targets <<<"${TARGETS:-A B C D}"
for wl in ${WORKLOADS:-read mix}; do
  for ((r = 0; r < rounds; r++)); do
    for ((k = 0; k < ${#targets[@]}; k++)); do
      one_run "$wl" "${targets[$(((k + r) % ${#targets[@]}))]}" "$((r + 1))"
    done
  done
done

report=$dir/report.md
python3 - "$dir/runs.tsv" "$clk_tck" "$duration" "$rounds" "$scale" "$clients" >"$report" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
tck, duration, rounds, scale, clients = (float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
names = {"A": "direct PostgreSQL", "B": "PgBouncer", "C": "Switchyard, cache off", "D": "Switchyard, cache on"}
print(f"pgbench, {clients} clients, scale {scale}, zipfian 1.1 keys, {rounds} rounds of {duration} s, target order rotated per round.\n")
med = {}
for wl in ("read", "mix"):
    title = "read: SELECT abalance by zipfian aid" if wl == "read" else "mix: 90 % that read, 10 % UPDATE of the same keys"
    print(f"### {title}\n")
    print("| target | TPS (median) | TPS per round | pooler CPU ms / 1k tx | hit ratio |")
    print("|---|---|---|---|---|")
    for t in "ABCD":
        rs = [r for r in rows if r["workload"] == wl and r["target"] == t]
        tps = [float(r["tps"] or 0) for r in rs]
        cpu = [float(r["cpu_ticks"]) * 1000 / tck / float(r["processed"]) * 1000 for r in rs if r["cpu_ticks"] and r["processed"] not in ("", "0")]
        hits = [float(r["hit_ratio"]) for r in rs if r["hit_ratio"]]
        med[(wl, t)] = statistics.median(tps) if tps else 0
        if not rs:
            continue
        print(f"| {t} = {names[t]} | {med[(wl, t)]:.0f} | {', '.join(f'{x:.0f}' for x in tps)} | "
              f"{statistics.median(cpu):.1f} |" if cpu else f"| {t} = {names[t]} | {med[(wl, t)]:.0f} | {', '.join(f'{x:.0f}' for x in tps)} | – |", end="")
        print(f" {statistics.median(hits):.3f} |" if hits else " – |")
    print()
d_read = [r for r in rows if r["workload"] == "read" and r["target"] == "D"]
per_entry = [(int(r["rss_kb1"]) - int(r["rss_kb0"])) * 1024 / int(r["entries"]) for r in d_read if r["entries"] not in ("", "0")]
acct = [int(r["bytes"]) / int(r["entries"]) for r in d_read if r["entries"] not in ("", "0")]
entries = [int(r["entries"]) for r in d_read if r["entries"]]
failed = sum(int(r["failed"] or 0) for r in rows)
print("### Against the targets\n")
def r(a, b):
    return f"{med[a] / med[b]:.2f}x" if med.get(a) and med.get(b) else "not run"
print(f"* read, cache on vs direct: **{r(('read', 'D'), ('read', 'A'))}** (target ≥ 1.5x); vs PgBouncer {r(('read', 'D'), ('read', 'B'))}; vs cache off {r(('read', 'D'), ('read', 'C'))}")
print(f"* mix, cache on vs cache off: **{r(('mix', 'D'), ('mix', 'C'))}** (target ≥ 1.0x)")
if entries:
    print(f"* entries after a read run: {statistics.median(entries):.0f}; accounted bytes per entry {statistics.median(acct):.0f}; "
          f"RSS growth per entry over an empty cache {statistics.median(per_entry):.0f} bytes")
print(f"* failed transactions over all runs: {failed}")
EOF
cat "$report"
if [[ $output != - ]]; then
  [[ $output == /* ]] || output=$repo/$output
  { echo "# Result cache benchmark"; echo; echo "Generated by \`integration/bench/cache.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$repo" rev-parse --short HEAD))."; echo; cat "$report"; } >"$output"
  cl_log "report written to $output"
fi
