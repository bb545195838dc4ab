#!/usr/bin/env bash
# Makes a PostgreSQL (15 or newer, wal_level=logical) and a Redis (AOF on)
# reachable on loopback for Remix's tests and demos, and prints the variables
# that point at them:
#
#   eval "$(scripts/test-servers.sh)"
#
# The machine's own servers are not touched: private instances run from the
# Debian packages' binaries (installed with apt-get when missing) under
# $REMIX_TEST_DIR (default /tmp/remix-test), on ports 55432 and 56379 unless
# REMIX_TEST_PG_PORT / REMIX_TEST_REDIS_PORT say otherwise. Running it again
# reuses instances that are up. `scripts/test-servers.sh stop` stops them.
set -euo pipefail

STATE=${REMIX_TEST_DIR:-/tmp/remix-test}
PG_PORT=${REMIX_TEST_PG_PORT:-55432}
REDIS_PORT=${REMIX_TEST_REDIS_PORT:-56379}
log() { echo "test-servers: $*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
		log "need root (or sudo) to run: $*"; exit 1
	fi
}

pg_bindir() {
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/pg_ctl" ] || continue
		local v=${d#/usr/lib/postgresql/}; v=${v%/bin}
		if [ "${v%%.*}" -ge 15 ] 2>/dev/null; then best=$d; fi
	done
	echo "$best"
}

install_packages() {
	local missing=()
	[ -n "$(pg_bindir)" ] || missing+=(postgresql)
	command -v redis-server >/dev/null || missing+=(redis-server)
	[ ${#missing[@]} -eq 0 ] && return
	log "installing ${missing[*]} from Debian packages"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq >&2
	as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# run_pg runs a PostgreSQL binary as the postgres user when we are root
# (PostgreSQL refuses to run as root).
run_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
	local bin data=$STATE/pg
	bin=$(pg_bindir)
	if [ -z "$bin" ]; then log "no PostgreSQL 15 or newer found"; exit 1; fi
	mkdir -p "$STATE"
	chmod 755 "$STATE"
	if [ -f "$data/PG_VERSION" ] && run_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		# Two-way sync keeps row versions in commit timestamps; an instance
		# set up before that was needed is switched on once (a restart).
		if [ "$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SHOW track_commit_timestamp' 2>/dev/null)" = off ]; then
			log "turning track_commit_timestamp on (restarting PostgreSQL on port $PG_PORT)"
			psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'ALTER SYSTEM SET track_commit_timestamp = on' >/dev/null
			run_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 60 restart -l "$data/server.log" >/dev/null
		fi
		log "PostgreSQL already running on port $PG_PORT"
		echo "$bin"; return
	fi
	if [ -f "$data/postgresql.conf" ] && grep -q '^synchronous_commit = off' "$data/postgresql.conf"; then
		sed -i '/^synchronous_commit = off$/d' "$data/postgresql.conf" # older setups of this script
	fi
	if [ ! -f "$data/PG_VERSION" ]; then
		mkdir -p "$data"
		[ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
		run_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
		cat >>"$data/postgresql.conf" <<CONF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
wal_level = logical
max_replication_slots = 100
max_wal_senders = 100
max_connections = 400
shared_buffers = 256MB
max_wal_size = 4GB
fsync = off
full_page_writes = off
logical_decoding_work_mem = 64MB
wal_sender_timeout = 60s
track_commit_timestamp = on
CONF
	fi
	log "starting PostgreSQL on port $PG_PORT ($data)"
	run_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null
	echo "$bin"
}

start_redis() {
	local dir=$STATE/redis
	mkdir -p "$dir"
	if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
		log "Redis already running on port $REDIS_PORT"; return
	fi
	log "starting Redis on port $REDIS_PORT ($dir)"
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
		--dir "$dir" --appendonly yes --appendfsync everysec --save "" \
		--pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
	for _ in $(seq 100); do
		redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
		sleep 0.1
	done
	log "Redis did not start; see $dir/redis.log"; exit 1
}

stop_all() {
	local bin
	bin=$(pg_bindir)
	if [ -n "$bin" ] && [ -f "$STATE/pg/PG_VERSION" ]; then
		run_pg "$bin/pg_ctl" -D "$STATE/pg" -m fast stop >/dev/null 2>&1 || true
	fi
	redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
	log "stopped"
}

case "${1:-start}" in
stop) stop_all; exit 0 ;;
start) ;;
*) log "usage: $0 [start|stop]"; exit 2 ;;
esac

install_packages
bin=$(start_postgres)
start_redis
cat <<VARS
export REMIX_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable'
export REMIX_TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
export REMIX_TEST_PG_BIN='$bin'
export REMIX_TEST_REDIS_SERVER='$(command -v redis-server)'
VARS
