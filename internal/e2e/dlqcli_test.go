package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// remixCode runs a remix command and returns its exit code and output.
func (f *fleet) remixCode(args ...string) (int, string) {
	f.t.Helper()
	out, err := f.remix(args...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out
	case errors.As(err, &exit):
		return exit.ExitCode(), out
	}
	f.t.Fatalf("remix %v: %v", args, err)
	return 0, ""
}

// TestDeadLetterCommands: `remix dlq show` prints a dead letter whole (its
// record, every reason, what waits behind it); `remix dlq replay` exits 1
// when anything failed again and says why for each, for a source's dead
// letters (replayed by the command) and a target's (replayed by its
// pushers, which the command waits for).
func TestDeadLetterCommands(t *testing.T) {
	t.Parallel()
	models := strictModels(t)
	f := newFleet(t, fleetOptions{models: models})
	f.exec(f.dst, `ALTER TABLE fact_order ADD CONSTRAINT small CHECK (amount < 1000)`)
	f.ingest("ingest").WaitStderr("streaming changes", 30*time.Second)
	f.pusher("pusher")
	f.exec(f.src, `INSERT INTO customers (id, full_name, email) VALUES (1, 'A name far too long for the model', 'a@example.com')`)
	f.exec(f.src, `UPDATE customers SET email = 'later@example.com' WHERE id = 1`) // waits behind it
	f.exec(f.src, `INSERT INTO customers (id, full_name) VALUES (2, 'Bo')`)
	f.exec(f.src, `INSERT INTO orders (id, customer_id, total, status) VALUES (1, 2, 5000, 'new')`)

	var shopID, warehouseID string
	waitFor(t, "the dead letters of both systems", 30*time.Second, func() bool {
		out, err := f.remix("dlq", "list", "--json")
		if err != nil {
			t.Fatalf("dlq list: %v\n%s", err, out)
		}
		shopID, warehouseID = "", ""
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var d struct{ System, ID string }
			if json.Unmarshal([]byte(line), &d) != nil {
				continue
			}
			if d.System == "shop" && shopID == "" {
				shopID = d.ID
			}
			if d.System == "warehouse" && warehouseID == "" {
				warehouseID = d.ID
			}
		}
		return shopID != "" && warehouseID != ""
	})

	code, out := f.remixCode("dlq", "show", shopID)
	for _, want := range []string{"dead letter " + shopID + " of shop (receive stage", "reasons:\n  - ", "length must be <= 20",
		"record:\n", "A name far too long for the model", "waiting behind it (same key): 1 dead letter"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("dlq show (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	if code, out := f.remixCode("dlq", "show", "1-1"); code != 1 || !strings.Contains(out, "no dead letter 1-1") {
		t.Fatalf("dlq show of a missing id: exit %d\n%s", code, out)
	}

	// Replayed before any fix: both fail again, exit 1, with the reasons.
	code, out = f.remixCode("dlq", "replay", "shop")
	if code != 1 || !strings.Contains(out, "failed "+shopID+" (model customer, key ") || !strings.Contains(out, "length must be <= 20") {
		t.Fatalf("replay of the source's dead letters: exit %d\n%s", code, out)
	}
	code, out = f.remixCode("dlq", "replay", "warehouse", "--wait", "30s")
	if code != 1 || !strings.Contains(out, "failed 1 key") || !strings.Contains(out, "failed "+warehouseID+" (model order") ||
		!strings.Contains(out, `violates check constraint "small"`) {
		t.Fatalf("replay of the target's dead letters: exit %d\n%s", code, out)
	}

	// Fixed: the replay succeeds and exits 0.
	f.exec(f.dst, `ALTER TABLE fact_order DROP CONSTRAINT small`)
	code, out = f.remixCode("dlq", "replay", "warehouse", "--wait", "30s")
	if code != 0 || !strings.Contains(out, "replayed 1 key, failed 0 keys") {
		t.Fatalf("replay after the fix: exit %d\n%s", code, out)
	}
	waitFor(t, "the order", 30*time.Second, func() bool {
		var n int
		f.dst.QueryRow(f.ctx, `SELECT count(*) FROM fact_order`).Scan(&n)
		return n == 1
	})
}
