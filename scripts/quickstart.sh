#!/usr/bin/env bash
# One command from a fresh Debian machine with Go to a running Remix:
#   scripts/quickstart.sh
# It starts PostgreSQL (logical WAL) and Redis (AOF) from Debian packages
# (scripts/test-servers.sh), creates the two databases of
# examples/postgresql_to_postgresql (remix_demo_shop, remix_demo_warehouse),
# builds the binaries, starts an ingest and a pusher, writes some customers
# and orders, and shows them arriving in the warehouse with renamed columns.
# It keeps running until Ctrl-C, which stops the ingest and the pusher
# cleanly; QUICKSTART_EXIT=1 makes it stop once the rows have arrived.
# The settings of the demo go to .remix/bin/remix.env, which the binaries
# there read, so its commands work from any shell.
#   scripts/quickstart.sh stop    stops a running demo and the servers
set -euo pipefail
cd "$(dirname "$0")/.."
work=.remix

# stop_fleet stops the ingest and the pusher of a running demo (their pids
# are in $work/pids) and waits until they are gone.
stop_fleet() {
	[ -f "$work/pids" ] || return 0
	local pids
	pids=$(cat "$work/pids")
	rm -f "$work/pids"
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	local p alive
	for _ in $(seq 150); do
		alive=""
		for p in $pids; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ -n "$alive" ] || return 0
		sleep 0.2
	done
	echo "the ingest or the pusher did not stop within 30s; see $work/logs" >&2
}

case "${1:-start}" in
stop)
	stop_fleet
	scripts/test-servers.sh stop
	echo "stopped the demo's ingest and pusher, and PostgreSQL and Redis (scripts/quickstart.sh starts them again)"
	exit 0 ;;
start) ;;
*) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac

stop_fleet # a demo left running by an earlier start
eval "$(scripts/test-servers.sh)"

pg_url=${REMIX_TEST_POSTGRES_URL%%\?*}
server=${pg_url%/*}
psql_at() { psql -q -v ON_ERROR_STOP=1 "$server/$1" "${@:2}"; }
mkdir -p "$work/bin" "$work/logs"

echo "==> databases remix_demo_shop and remix_demo_warehouse"
psql_at postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'remix_demo_shop'" >/dev/null
psql_at postgres -c "DROP DATABASE IF EXISTS remix_demo_shop WITH (FORCE)" -c "DROP DATABASE IF EXISTS remix_demo_warehouse WITH (FORCE)" \
	-c "CREATE DATABASE remix_demo_shop" -c "CREATE DATABASE remix_demo_warehouse" 2>/dev/null
psql_at remix_demo_shop -f examples/postgresql_to_postgresql/source.sql
psql_at remix_demo_warehouse -f examples/postgresql_to_postgresql/target.sql
redis-cli -u "$REMIX_TEST_REDIS_URL" --scan --pattern 'remix-demo:*' | xargs -r redis-cli -u "$REMIX_TEST_REDIS_URL" del >/dev/null

echo "==> building"
go build -o "$work/bin/" ./cmd/...

example=$PWD/examples/postgresql_to_postgresql
cat >"$work/bin/remix.env" <<ENV
# Settings of the quickstart demo. The binaries in this folder read them
# (variables set in the environment win); a shell can too: set -a; . $work/bin/remix.env; set +a
SYSTEMS_DIR='$example/systems'
MODELS_DIR='$example/models'
SHOP_DSN='$server/remix_demo_shop'
WAREHOUSE_DSN='$server/remix_demo_warehouse'
SHOP_SLOT=remix_demo_shop
REDIS_URL='$REMIX_TEST_REDIS_URL'
REMIX_NAMESPACE=remix-demo
ENV
chmod 600 "$work/bin/remix.env"
set -a
# shellcheck disable=SC1091
. "$work/bin/remix.env"
set +a
"$work/bin/remix" validate --online

# Ctrl-C reaches the ingest and the pusher too (SIGINT to the terminal's
# process group); the SIGTERM sent here right after counts as the same
# request to stop, so both stop cleanly. The traps are set before either
# starts, and each pid is recorded as it starts, so a stop at any moment
# finds them.
finish() {
	trap - EXIT INT TERM
	stop_fleet
	echo "stopped the ingest and the pusher; PostgreSQL and Redis keep running (scripts/quickstart.sh stop stops them)"
}
trap finish EXIT
trap 'finish; exit 130' INT TERM
echo "==> starting an ingest (http://127.0.0.1:18080) and a pusher (http://127.0.0.1:18081)"
"$work/bin/ingest" --http-addr 127.0.0.1:18080 >"$work/logs/ingest.log" 2>&1 &
ingest=$!
echo "$ingest" >"$work/pids"
"$work/bin/pusher" --http-addr 127.0.0.1:18081 >"$work/logs/pusher.log" 2>&1 &
pusher=$!
echo "$ingest $pusher" >"$work/pids"

for _ in $(seq 100); do
	curl -sf 127.0.0.1:18080/readyz >/dev/null && curl -sf 127.0.0.1:18081/readyz >/dev/null && break
	sleep 0.2
done
curl -s 127.0.0.1:18080/readyz; curl -s 127.0.0.1:18081/readyz

echo "==> writing 1000 customers and 3000 orders to the shop, then updating and deleting some"
psql_at remix_demo_shop <<'SQL'
INSERT INTO customers (full_name, email) SELECT 'Customer ' || g, 'customer' || g || '@example.com' FROM generate_series(1, 1000) g;
INSERT INTO orders (customer_id, total, status) SELECT 1 + g % 1000, (g % 500) + 0.99, 'new' FROM generate_series(1, 3000) g;
UPDATE orders SET status = 'paid' WHERE id % 3 = 0;
UPDATE customers SET email = NULL, notes = 'asked not to be emailed' WHERE id <= 25;
DELETE FROM orders WHERE id % 10 = 0;
SQL

count() { psql_at "$1" -Atc "SELECT (SELECT count(*) FROM $2) || ' ' || (SELECT count(*) FROM $3)"; }
want=$(count remix_demo_shop customers orders)
for _ in $(seq 150); do
	got=$(count remix_demo_warehouse dim_customer fact_order)
	echo "    shop customers/orders: $want   warehouse dim_customer/fact_order: $got"
	[ "$got" = "$want" ] && break
	sleep 0.2
done
[ "$got" = "$want" ] || { echo "the warehouse did not catch up; see $work/logs"; exit 1; }

echo "==> in the warehouse, with its own column names:"
psql_at remix_demo_warehouse -c "SELECT customer_key, name, email_address, profile_notes FROM dim_customer ORDER BY customer_key LIMIT 3" \
	-c "SELECT state, count(*) FROM fact_order GROUP BY state ORDER BY state"

if [ "${QUICKSTART_EXIT:-}" = 1 ]; then
	exit 0
fi
cat <<TXT
==> Remix is running. Change the shop and watch the warehouse:
    psql $server/remix_demo_shop -c "UPDATE customers SET full_name = 'Ada Lovelace' WHERE id = 1"
    psql $server/remix_demo_warehouse -c "SELECT * FROM dim_customer WHERE customer_key = 1"
    the fleet: $work/bin/remix status --watch      dead letters: $work/bin/remix dlq list
    metrics: curl 127.0.0.1:18080/metrics 127.0.0.1:18081/metrics
    settings: $work/bin/remix.env (the binaries there read it); logs in $work/logs
    Ctrl-C stops the ingest and the pusher; scripts/quickstart.sh stop also stops PostgreSQL and Redis.
TXT
wait $ingest $pusher || true
