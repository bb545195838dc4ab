package connectortest

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
)

// CheckLingered checks the first batch a lingering source handed over,
// took after the first of n single-row transactions was made: all n (ids
// 1 to n, in order) in the one batch, no sooner than the linger and no
// later than most.
func CheckLingered(t *testing.T, b connectors.Batch, n int, took, linger, most time.Duration) {
	t.Helper()
	if len(b.Changes) != n {
		t.Fatalf("with linger %v: the first batch held %d changes, want the %d transactions", linger, len(b.Changes), n)
	}
	if took < linger || took > most {
		t.Fatalf("with linger %v: the batch came after %v, want the linger and at most %v", linger, took, most)
	}
	for i, c := range b.Changes {
		if c.Record.Fields["id"] != json.Number(strconv.Itoa(i+1)) {
			t.Fatalf("change %d: id %v, want %d", i, c.Record.Fields["id"], i+1)
		}
	}
}
