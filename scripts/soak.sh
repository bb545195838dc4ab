#!/usr/bin/env bash
# Soak: the pusher freeze series of the end-to-end tests with a longer load
# and many more freezes (by default 20 shorter and 20 longer than the lease,
# with one pusher and with two), comparing the shop and the warehouse row by
# row at the end. Not part of CI (it takes several minutes); CI runs the
# same test with a few freezes of each kind.
#
#   scripts/soak.sh                 # 20 short + 20 long freezes per run
#   SHORT=40 LONG=10 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/test-servers.sh)"
export REMIX_SOAK_SHORT_STALLS=${SHORT:-20}
export REMIX_SOAK_LONG_STALLS=${LONG:-20}
[ -n "${OPS:-}" ] && export REMIX_SOAK_OPS=$OPS
go test -count=1 -timeout 60m -v -run 'TestShortPusherStallsLoseNothing' ./internal/e2e/ 2>&1 |
	grep -E '^(=== RUN|--- |ok|FAIL|PASS)|stall_test.go|harness_test.go'
