#!/usr/bin/env bash
# The profile-guided release build (PGO): the binary to run in production and to benchmark.
#
#   1. build an instrumented release binary (target/pgo-gen);
#   2. start a throw-away PostgreSQL primary and streaming replica (wal_level = logical;
#      integration/lib/cluster.sh) and put pgbench load through three instances of that
#      binary: reads routed to the replica and writes to the primary (select-only over TCP
#      and a Unix-domain socket, TPC-B, prepared statements, a connection per
#      transaction), TLS on both sides, and the result cache (hits, and writes that
#      invalidate it). Then stop them: each writes its profile at exit;
#   3. merge the profiles with llvm-profdata (rustup's llvm-tools, added when missing: it
#      must come from the same LLVM as rustc);
#   4. build the release binary with the profile (target/pgo): the compiler inlines and
#      lays out the code a transaction runs through by how often it ran, and keeps the rest
#      out of its way. The result: the hot path fits in a 32 KiB L1 instruction cache
#      (docs/ARCHITECTURE.md, "Build profile").
#
# Usage: scripts/pgo-build.sh            prints the binary's path last:
#                                        target/pgo/release/switchyard
#
# Environment:
#   PGO_SECONDS   seconds of load per training run (default 8)
#   PGO_PORT      the throw-away primary's port (default 25700); the replica and the
#                 three Switchyards use the next four
#   PG_BIN        PostgreSQL's binaries (default /usr/lib/postgresql/15/bin)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/../integration/lib/cluster.sh
. "$repo/integration/lib/cluster.sh"
CL_LOG_TAG=pgo
seconds=${PGO_SECONDS:-8}
pg_port=${PGO_PORT:-25700}
replica_port=$((pg_port + 1))
plain_port=$((pg_port + 2))
tls_port=$((pg_port + 3))
cache_port=$((pg_port + 4))

# llvm-profdata of the LLVM that rustc uses.
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [[ ! -x $profdata ]]; then
  cl_log "adding rustup's llvm-tools (llvm-profdata)"
  rustup component add llvm-tools >&2
fi

work=$(mktemp -d /tmp/switchyard-pgo.XXXXXX)
chmod 711 "$work"
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do switchyard_stop "$p" 30; done
  cluster_down "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT

# build TARGET_DIR RUSTFLAGS...: a locked release build of the switchyard binary.
build() {
  local target=$1
  shift
  (cd "$repo" && RUSTFLAGS="${RUSTFLAGS:-} $*" CARGO_TARGET_DIR="$repo/target/$target" \
    cargo build --release --locked --bin switchyard) >&2
}

cl_log "1/4: instrumented build (target/pgo-gen)"
# A fixed profile directory, so that a second run reuses this build.
profiles=$repo/target/pgo-gen/profiles
build pgo-gen "-Cprofile-generate=$profiles"
# Build scripts are instrumented too: their profiles are not Switchyard's.
rm -rf "$profiles"

cl_log "2/4: training load, $seconds s a run"
PG_WAL_LEVEL=logical bench_primary_up "$work/pg" "$pg_port" 1 "$replica_port"
# start_switchyard CONFIG PORT: the instrumented binary on PORT (SCRAM towards clients).
start_switchyard() {
  sed -i '1a auth_method = "scram-sha-256"' "$1"
  RUST_LOG=warn "$repo/target/pgo-gen/release/switchyard" --config "$1" </dev/null \
    >"$1.log" 2>&1 &
  pids+=($!)
  wait_port 127.0.0.1 "$2" 30 "$!" || { cat "$1.log" >&2; exit 1; }
}
write_switchyard_config "$work/routed.toml" "127.0.0.1:$plain_port" 20 transaction \
  "127.0.0.1:$pg_port" "127.0.0.1:$replica_port"
sed -i "1a listen_unix_dir = \"$work\"" "$work/routed.toml"
start_switchyard "$work/routed.toml" "$plain_port"
write_switchyard_config "$work/tls.toml" "127.0.0.1:$tls_port" 20 transaction "127.0.0.1:$pg_port"
switchyard_tls_both_sides "$work/tls.toml" "$work/tls" "$work/pg/primary:$pg_port"
start_switchyard "$work/tls.toml" "$tls_port"
write_switchyard_config "$work/cache.toml" "127.0.0.1:$cache_port" 20 transaction "127.0.0.1:$pg_port"
printf '\n[databases.app.cache]\nenabled = true\ninvalidation = "wal"\n' >>"$work/cache.toml"
start_switchyard "$work/cache.toml" "$cache_port"

# load HOST PORT PGBENCH_FLAGS...: one training run.
load() {
  local h=$1 p=$2
  shift 2
  "$PG_BIN/pgbench" -n "$@" -T "$seconds" -h "$h" -p "$p" -U "$CL_APP_USER" "$CL_APP_DB" \
    >"$work/pgbench.out" 2>&1 || { cat "$work/pgbench.out" >&2; exit 1; }
  cl_log "pgbench $* via $h:$p: $(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.out") tps"
}
load 127.0.0.1 "$plain_port" -S -c 32 -j 2
load 127.0.0.1 "$plain_port" -c 16 -j 2
load 127.0.0.1 "$plain_port" -S -M prepared -c 32 -j 2
load 127.0.0.1 "$plain_port" -S -C -c 8 -j 2
load "$work" "$plain_port" -S -c 32 -j 2
PGSSLMODE=require load 127.0.0.1 "$tls_port" -S -c 32 -j 2
load 127.0.0.1 "$cache_port" -S -c 32 -j 2
load 127.0.0.1 "$cache_port" -c 8 -j 2
for p in "${pids[@]}"; do switchyard_stop "$p" 60; done
pids=()

cl_log "3/4: merging the profiles ($(du -sh "$profiles" | cut -f1))"
mkdir -p "$repo/target/pgo"
"$profdata" merge -o "$repo/target/pgo/switchyard.profdata" "$profiles"

cl_log "4/4: release build with the profile (target/pgo)"
# Cargo does not see a new profile in the same file: build everything afresh.
rm -rf "$repo/target/pgo/release"
build pgo "-Cprofile-use=$repo/target/pgo/switchyard.profdata"
cl_log "done"
echo "$repo/target/pgo/release/switchyard"
