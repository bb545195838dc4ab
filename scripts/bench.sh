#!/usr/bin/env bash
# The benchmark: starts the test servers (and, inside, a second PostgreSQL
# as the target server), then measures catch-up throughput against
# PostgreSQL's own logical replication, steady latency at 2 000 rows/s, and
# peak memory during a 1 000 000-row snapshot. It prints its figures; it
# asserts nothing. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/test-servers.sh)"
go test -run '^$' -bench "${1:-.}" -benchtime 1x -timeout 60m ./internal/bench
