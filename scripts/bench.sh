#!/usr/bin/env bash
# The benchmark: starts the test servers, then, each on private servers of
# its own (a source PostgreSQL, a target PostgreSQL, a Redis with AOF),
# measures catch-up throughput against PostgreSQL's own logical replication
# (1 and 100 rows per transaction), latency at 2 000 rows/s with 1, 2 and 4
# pushers, a steady 1 000 rows/s with the CPU and round trips per row (the
# source's linger 0 and 20 ms), what an idle fleet costs a second, scaling
# against a slow target with 1, 2 and 4 pushers (and the target alone with
# 1, 4 and 16 connections: the most those writers can give), a backlog of single-row publishes in Redis drained by one
# pusher (a target back from an outage), and a 1 000 000-row snapshot; and
# MariaDB → PostgreSQL: binary log catch-up, a steady 1 000 rows/s (linger
# 0 and 20 ms) and a snapshot under writes. pgstream (v1.3.1) runs beside
# Remix where it can be built: it needs wal2json, installed from Debian's
# packages when missing.
# It prints its figures and one table at the end; it asserts nothing.
# Takes 12 to 20 minutes, by host.
#
#   scripts/bench.sh                 # everything
#   scripts/bench.sh CatchUp         # benchmarks whose name matches
#   REMIX_BENCH_ROUNDS=5 scripts/bench.sh CatchUp
#   REMIX_BENCH_PGSTREAM=none scripts/bench.sh   # without pgstream
#   REMIX_BENCH_LINGER=10ms scripts/bench.sh Steady   # the steady run's second linger (20ms)
#   REMIX_BENCH_LATENCY_LINGER=10ms scripts/bench.sh Latency   # the latency run's linger (0s)
#   REMIX_ENTRY_COMPRESSION=none scripts/bench.sh Snapshot   # the processes take
#                                    # their settings from the environment: here, plain entries
#   REMIX_BENCH_BIN=/tmp/oldbin scripts/bench.sh CatchUp
#                                    # binaries built elsewhere (an older commit's)
#   REMIX_BENCH_LOGS=/tmp/logs REMIX_BENCH_LOG_LEVEL=debug scripts/bench.sh CatchUp
#                                    # keep every process's log there
#   REMIX_BENCH_CATCHUP_ROWS=600000 REMIX_BENCH_PROFILE=/tmp/prof scripts/bench.sh CatchUp
#                                    # a longer catch-up (100 000 rows unless set), for steadier profiles
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/test-servers.sh)"
PGSTREAM_VERSION=v1.3.1
log() { echo "bench: $*" >&2; }

# pgstream builds pgstream from its module (the module proxy serves the
# version but not a version list, so go install is refused) and prints its
# path, or nothing when it cannot.
pgstream() {
	local out=${REMIX_TEST_DIR:-/tmp/remix-test}/pgstream-$PGSTREAM_VERSION dir
	if [ -x "$out" ]; then echo "$out"; return; fi
	dir=$(go mod download -json "github.com/xataio/pgstream@$PGSTREAM_VERSION" 2>/dev/null | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
	if [ -z "$dir" ] || ! (cd "$dir" && GOFLAGS=-mod=mod go build -o "$out" . >&2); then
		log "pgstream $PGSTREAM_VERSION could not be built: measuring without it"; return
	fi
	echo "$out"
}

# wal2json is pgstream's output plugin, from Debian's packages.
wal2json() {
	local major
	major=$(basename "$(dirname "$REMIX_TEST_PG_BIN")")
	[ -f "/usr/lib/postgresql/$major/lib/wal2json.so" ] && return
	log "installing postgresql-$major-wal2json"
	local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "postgresql-$major-wal2json" >&2 ||
		{ $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "postgresql-$major-wal2json" >&2; }
}

if [ "${REMIX_BENCH_PGSTREAM:-}" = none ]; then
	unset REMIX_BENCH_PGSTREAM
elif [ -z "${REMIX_BENCH_PGSTREAM:-}" ]; then
	if wal2json; then
		REMIX_BENCH_PGSTREAM=$(pgstream)
		[ -n "$REMIX_BENCH_PGSTREAM" ] && export REMIX_BENCH_PGSTREAM
	else
		log "wal2json is not installed and could not be: measuring without pgstream"
	fi
fi
# steal is the CPU time the hypervisor gave other guests since boot (the
# eighth field of /proc/stat's cpu line, in USER_HZ ticks): when it grows
# during a run, other machines' work shared these cores.
steal() { awk '/^cpu /{printf "%.1f s of CPU stolen by the hypervisor since boot", $9/100}' /proc/stat 2>/dev/null; }
log "load: $(uptime); $(steal)"
go test -run '^$' -bench "${1:-.}" -benchtime 1x -timeout 120m ./internal/bench
log "load: $(uptime); $(steal)"
