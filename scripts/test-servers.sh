#!/usr/bin/env bash
# Makes a PostgreSQL (15 or newer, wal_level=logical), a Redis (AOF on) and a
# stripe-mock (Stripe's API validator) reachable on loopback for Remix's tests
# and demos, and prints the variables that point at them:
#
#   eval "$(scripts/test-servers.sh)"
#
# The machine's own servers are not touched: private instances run from the
# Debian packages' binaries (installed with apt-get when missing) under
# $REMIX_TEST_DIR (default /tmp/remix-test), on ports 55432 and 56379 unless
# REMIX_TEST_PG_PORT / REMIX_TEST_REDIS_PORT say otherwise. stripe-mock is
# installed with `go install` (pinned: STRIPE_MOCK_VERSION) when missing and
# runs on the first free port from 52111 (REMIX_TEST_STRIPE_MOCK_PORT to
# choose). Running it again reuses instances that are up.
# `scripts/test-servers.sh stop` stops them.
set -euo pipefail

STATE=${REMIX_TEST_DIR:-/tmp/remix-test}
PG_PORT=${REMIX_TEST_PG_PORT:-55432}
REDIS_PORT=${REMIX_TEST_REDIS_PORT:-56379}
STRIPE_MOCK_VERSION=v0.203.0
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

# stripe_mock_bin prints the stripe-mock binary, installing it when missing.
stripe_mock_bin() {
	local bin
	bin=$(command -v stripe-mock || true)
	[ -n "$bin" ] || bin="$(go env GOPATH)/bin/stripe-mock"
	if [ ! -x "$bin" ]; then
		log "installing stripe-mock $STRIPE_MOCK_VERSION with go install"
		go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" >&2 || return 1
	fi
	echo "$bin"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# is_stripe_mock answers whether a stripe-mock listens on port $1.
is_stripe_mock() {
	curl -fsS -m 2 -u sk_test_remix: "http://127.0.0.1:$1/v1/products?limit=1" 2>/dev/null | grep -q '"object": *"list"'
}

# start_stripe_mock prints the port stripe-mock listens on ("" when it
# cannot run: the Stripe tests then skip, or fail under CI).
start_stripe_mock() {
	local dir=$STATE/stripe-mock port bin
	mkdir -p "$dir"
	port=${REMIX_TEST_STRIPE_MOCK_PORT:-$(cat "$dir/port" 2>/dev/null || echo 52111)}
	if is_stripe_mock "$port"; then
		log "stripe-mock already running on port $port"; echo "$port"; return
	fi
	if ! bin=$(stripe_mock_bin); then
		log "stripe-mock is not installed and could not be: Stripe API tests will skip"; return
	fi
	if [ -z "${REMIX_TEST_STRIPE_MOCK_PORT:-}" ]; then
		for port in $(seq 52111 52160); do port_open "$port" || break; done
	fi
	log "starting stripe-mock on port $port ($dir)"
	nohup "$bin" -http-addr "127.0.0.1:$port" -https-addr "127.0.0.1:" >"$dir/stripe-mock.log" 2>&1 &
	echo $! >"$dir/pid"
	echo "$port" >"$dir/port"
	for _ in $(seq 100); do
		is_stripe_mock "$port" && { echo "$port"; return; }
		sleep 0.1
	done
	log "stripe-mock did not start; see $dir/stripe-mock.log"
}

# --- MariaDB (the mysql connector's tests) ---------------------------------
# A private MariaDB from Debian's mariadb-server binaries (installed when
# missing) under $STATE/mariadb on port 53306 (REMIX_TEST_MYSQL_PORT), with
# the binary log the mysql source reads: log_bin, binlog_format=ROW,
# binlog_row_image=FULL, binlog_row_metadata=FULL, server_id=1. User remix
# (password remix) may do everything; tests make their own databases.
MYSQL_PORT=${REMIX_TEST_MYSQL_PORT:-53306}

mariadb_ping() { mariadb-admin --no-defaults -h 127.0.0.1 -P "$MYSQL_PORT" -u remix -premix ping >/dev/null 2>&1; }

# start_mariadb prints the server's mysql:// URL ("" when it cannot run: the
# MySQL tests then skip, or fail under CI).
start_mariadb() {
	local dir=$STATE/mariadb
	if ! [ -x /usr/sbin/mariadbd ] || ! command -v mariadb-install-db >/dev/null; then
		log "installing mariadb-server from Debian packages"
		export DEBIAN_FRONTEND=noninteractive
		{ as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client; } >&2 || {
			log "mariadb-server could not be installed: MySQL tests will skip"; return; }
	fi
	if mariadb_ping; then
		log "MariaDB already running on port $MYSQL_PORT"; echo "mysql://remix:remix@127.0.0.1:$MYSQL_PORT/"; return
	fi
	local user=()
	[ "$(id -u)" = 0 ] && user=(--user=mysql)
	mkdir -p "$dir/data"
	[ "$(id -u)" = 0 ] && chown -R mysql:mysql "$dir"
	if [ ! -d "$dir/data/mysql" ]; then
		mariadb-install-db --no-defaults --datadir="$dir/data" "${user[@]}" --auth-root-authentication-method=normal \
			--skip-test-db >"$dir/install.log" 2>&1 || { log "mariadb-install-db failed; see $dir/install.log"; return; }
	fi
	log "starting MariaDB on port $MYSQL_PORT ($dir)"
	nohup /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" "${user[@]}" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
		--socket="$dir/mariadbd.sock" --pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" --skip-name-resolve \
		--log-bin="$dir/data/binlog" --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL --server-id=1 \
		--max-connections=600 --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 --innodb-buffer-pool-size=256M \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci >/dev/null 2>&1 &
	for _ in $(seq 300); do
		if mariadb --no-defaults --socket="$dir/mariadbd.sock" -u root -e "SELECT 1" >/dev/null 2>&1; then break; fi
		sleep 0.1
	done
	mariadb --no-defaults --socket="$dir/mariadbd.sock" -u root -e \
		"CREATE USER IF NOT EXISTS 'remix'@'127.0.0.1' IDENTIFIED BY 'remix'; GRANT ALL PRIVILEGES ON *.* TO 'remix'@'127.0.0.1' WITH GRANT OPTION;" 2>>"$dir/error.log" ||
		{ log "MariaDB did not start; see $dir/error.log"; return; }
	mariadb_ping && echo "mysql://remix:remix@127.0.0.1:$MYSQL_PORT/"
}

stop_mariadb() {
	[ -f "$STATE/mariadb/mariadbd.pid" ] && kill "$(cat "$STATE/mariadb/mariadbd.pid")" 2>/dev/null || true
}
# --- end of MariaDB ----------------------------------------------------------

# --- object stores for blob datasets: an S3 API (versitygw), a GCS API
# (fake-gcs-server) and Azure Blob (Azurite), each a private process under
# $STATE on its own port (REMIX_TEST_S3_PORT, REMIX_TEST_GCS_PORT,
# REMIX_TEST_AZURITE_PORT). A store that cannot be installed is left out:
# its tests skip, or fail under CI. ---
VERSITYGW_VERSION=v1.8.0
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.35.0
S3_PORT=${REMIX_TEST_S3_PORT:-57070}
GCS_PORT=${REMIX_TEST_GCS_PORT:-57080}
AZURITE_PORT=${REMIX_TEST_AZURITE_PORT:-57090}
S3_KEY=remixtest
S3_SECRET=remixtestsecret
# Azurite's well-known development account.
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

# go_tool prints a Go program's binary, installing it pinned when missing.
go_tool() {
	local name=$1 module=$2 bin
	bin=$(command -v "$name" || true)
	[ -n "$bin" ] || bin="$(go env GOPATH)/bin/$name"
	if [ ! -x "$bin" ]; then
		log "installing $name ($module) with go install"
		go install "$module" >&2 || return 1
	fi
	echo "$bin"
}

# start_daemon NAME PORT CMD...: runs CMD in the background unless
# something already listens on PORT, and waits for the port.
start_daemon() {
	local name=$1 port=$2 dir=$STATE/$1
	shift 2
	mkdir -p "$dir"
	if port_open "$port"; then
		log "$name already running on port $port"; return 0
	fi
	log "starting $name on port $port ($dir)"
	nohup "$@" >"$dir/$name.log" 2>&1 &
	echo $! >"$dir/pid"
	for _ in $(seq 150); do
		port_open "$port" && return 0
		sleep 0.1
	done
	log "$name did not start; see $dir/$name.log"; return 1
}

start_blobstores() {
	local bin
	if bin=$(go_tool versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") &&
		mkdir -p "$STATE/versitygw/data" &&
		start_daemon versitygw "$S3_PORT" "$bin" --access "$S3_KEY" --secret "$S3_SECRET" --port "127.0.0.1:$S3_PORT" posix "$STATE/versitygw/data"; then
		echo "export REMIX_TEST_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'"
		echo "export REMIX_TEST_S3_ACCESS_KEY='$S3_KEY'"
		echo "export REMIX_TEST_S3_SECRET_KEY='$S3_SECRET'"
	else
		log "no S3 API server: S3 dataset tests will skip"
	fi
	if bin=$(go_tool fake-gcs-server "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION") &&
		start_daemon fake-gcs-server "$GCS_PORT" "$bin" -scheme http -host 127.0.0.1 -port "$GCS_PORT" -backend filesystem \
			-filesystem-root "$STATE/fake-gcs-server/data" -public-host "127.0.0.1:$GCS_PORT" -log-level warn; then
		echo "export REMIX_TEST_GCS_ENDPOINT='http://127.0.0.1:$GCS_PORT'"
	else
		log "no fake-gcs-server: GCS dataset tests will skip"
	fi
	local azurite=$STATE/azurite/pkg/node_modules/.bin/azurite-blob
	if [ ! -x "$azurite" ] && command -v npm >/dev/null; then
		log "installing azurite $AZURITE_VERSION with npm"
		npm install --silent --no-audit --no-fund --prefix "$STATE/azurite/pkg" "azurite@$AZURITE_VERSION" >&2 || true
	fi
	if [ -x "$azurite" ] && mkdir -p "$STATE/azurite/data" &&
		start_daemon azurite "$AZURITE_PORT" "$azurite" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
			--location "$STATE/azurite/data" --skipApiVersionCheck --disableTelemetry --silent; then
		echo "export REMIX_TEST_AZURE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY;BlobEndpoint=http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT;'"
	else
		log "no Azurite: Azure dataset tests will skip"
	fi
}

stop_blobstores() {
	local name
	for name in versitygw fake-gcs-server azurite; do
		if [ -f "$STATE/$name/pid" ]; then
			kill "$(cat "$STATE/$name/pid")" 2>/dev/null || true
			rm -f "$STATE/$name/pid"
		fi
	done
}
# --- end of object stores ---

stop_all() {
	local bin
	bin=$(pg_bindir)
	if [ -n "$bin" ] && [ -f "$STATE/pg/PG_VERSION" ]; then
		run_pg "$bin/pg_ctl" -D "$STATE/pg" -m fast stop >/dev/null 2>&1 || true
	fi
	redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
	if [ -f "$STATE/stripe-mock/pid" ]; then
		kill "$(cat "$STATE/stripe-mock/pid")" 2>/dev/null || true
		rm -f "$STATE/stripe-mock/pid"
	fi
	stop_mariadb
	stop_blobstores
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
stripe_mock_port=$(start_stripe_mock)
mysql_url=$(start_mariadb)
blob_vars=$(start_blobstores)
cat <<VARS
export REMIX_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable'
export REMIX_TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'
export REMIX_TEST_PG_BIN='$bin'
export REMIX_TEST_REDIS_SERVER='$(command -v redis-server)'
VARS
if [ -n "$stripe_mock_port" ]; then
	echo "export REMIX_TEST_STRIPE_MOCK_URL='http://127.0.0.1:$stripe_mock_port'"
fi
if [ -n "$mysql_url" ]; then
	echo "export REMIX_TEST_MYSQL_URL='$mysql_url'"
	echo "export REMIX_TEST_MARIADBD='/usr/sbin/mariadbd'"
fi
[ -z "$blob_vars" ] || echo "$blob_vars"
