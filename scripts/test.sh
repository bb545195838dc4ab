#!/usr/bin/env bash
# The test command: starts the test servers, then vets and runs every test
# with the race detector. Fuzz tests run their seed corpus here; run them
# longer by hand with `go test ./mixer -fuzz FuzzReceivePush -fuzztime 10m`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/test-servers.sh)"
unformatted=$(git ls-files '*.go' | xargs -r gofmt -l)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
go test -race -count=1 -timeout 20m "$@" ./...
