package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestFixAtTheSourceFlowsByItself: a row the model refuses is set aside
// and parks its key; fixing the row at the source (an update that carries
// the whole row) supersedes the dead letters and arrives without any
// command; the superseded dead letters are kept and counted.
func TestFixAtTheSourceFlowsByItself(t *testing.T) {
	t.Parallel()
	models := strictModels(t)
	f := newFleet(t, fleetOptions{models: models})
	f.ingest("ingest").WaitStderr("streaming changes", 30*time.Second)
	f.pusher("pusher")
	f.exec(f.src, `INSERT INTO customers (id, full_name, email) VALUES (1, 'Ada', 'ada@example.com'), (2, 'A name far too long for the model', 'b@example.com')`)
	waitFor(t, "the good row", 30*time.Second, func() bool {
		var n int
		f.dst.QueryRow(f.ctx, `SELECT count(*) FROM dim_customer`).Scan(&n)
		return n == 1
	})
	if out, err := f.remix("dlq", "list", "--system", "shop"); err != nil || !strings.Contains(out, "length must be <= 20") {
		t.Fatalf("dead letters (%v):\n%s", err, out)
	}
	// The fix at the source: no replay, no restart.
	f.exec(f.src, `UPDATE customers SET full_name = 'Bo' WHERE id = 2`)
	f.waitConverged(30 * time.Second)
	out, err := f.remix("dlq", "list", "--system", "shop")
	if err != nil || strings.Contains(out, "length must be <= 20") {
		t.Fatalf("the dead letter is still listed (%v):\n%s", err, out)
	}
	if n := f.rdb.XLen(f.ctx, f.ns+":{dlq:shop}:superseded").Val(); n != 1 {
		t.Fatalf("%d superseded dead letters kept, want 1", n)
	}
	// A person finds them: in the list of superseded dead letters, with
	// what superseded them, and counted in the queue's figures and status.
	out, err = f.remix("dlq", "list", "--system", "shop", "--superseded")
	if err != nil || !strings.Contains(out, "length must be <= 20") || !strings.Contains(out, "SUPERSEDED BY") || !strings.Contains(out, "1 superseded") {
		t.Fatalf("remix dlq list --superseded (%v):\n%s", err, out)
	}
	v := f.status()
	found := false
	for _, d := range v.DeadLetters {
		if d.System == "shop" {
			found = true
			if d.Superseded != 1 || d.Entries != 0 {
				t.Errorf("status of shop's dead letters: %+v", d)
			}
		}
	}
	if !found {
		t.Errorf("status shows no dead-letter queue of shop: %+v", v.DeadLetters)
	}
}
