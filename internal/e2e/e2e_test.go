package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/testenv"
)

// TestMixedLoadArrivesRowForRow: two tables with renamed columns, 10 000
// inserts, updates (some setting NULL, some leaving a TOASTed column as it
// is) and deletes; the warehouse ends equal to the shop, row for row.
func TestMixedLoadArrivesRowForRow(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	// Some rows exist before Remix starts: they come through the snapshot.
	if err := f.load(f.ctx, 1, 500, 0); err != nil {
		t.Fatal(err)
	}
	f.ingest("ingest")
	f.pusher("pusher")
	if err := f.load(f.ctx, 2, 10000, 0); err != nil {
		t.Fatal(err)
	}
	f.waitConverged(90 * time.Second)
	var n int
	f.dst.QueryRow(f.ctx, `SELECT count(*) FROM dim_customer WHERE length(profile_notes) > 5000`).Scan(&n)
	if n == 0 {
		t.Fatal("no TOASTed notes reached the target: the test did not exercise them")
	}
	if out, _ := f.remix("dlq", "list"); f.deadLetterRows(out) > 0 {
		t.Fatalf("dead letters after a clean load:\n%s", out)
	}
}

// TestBadRowIsDeadLetteredAndReplayed: a row the model refuses goes to the
// dead-letter queue with the reason while the rest flows; later changes of
// the same row wait behind it; once the model is fixed, a replay delivers
// them in order.
func TestBadRowIsDeadLetteredAndReplayed(t *testing.T) {
	t.Parallel()
	models := strictModels(t)
	f := newFleet(t, fleetOptions{models: models})
	ingest := f.ingest("ingest")
	ingest.WaitStderr("streaming changes", 30*time.Second)
	f.pusher("pusher")
	f.exec(f.src, `INSERT INTO customers (id, full_name, email) VALUES (1, 'Ada', 'ada@example.com'), (2, 'A name far too long for the model', 'b@example.com'), (3, 'Cy', NULL)`)
	f.exec(f.src, `UPDATE customers SET email = 'later@example.com' WHERE id = 2`) // waits behind the bad insert
	f.exec(f.src, `INSERT INTO customers (id, full_name) VALUES (4, 'Di')`)
	waitFor(t, "the good rows", 30*time.Second, func() bool {
		var n int
		f.dst.QueryRow(f.ctx, `SELECT count(*) FROM dim_customer`).Scan(&n)
		return n == 3
	})
	out, err := f.remixNoSecrets("dlq", "list", "--system", "shop")
	if err != nil || !strings.Contains(out, "field name: length must be <= 20") || strings.Count(out, "shop ") != 2 {
		t.Fatalf("dead letters (%v):\n%s", err, out)
	}
	// Replaying before the fix fails and keeps both.
	out, _ = f.remixNoSecrets("dlq", "replay", "shop")
	if !strings.Contains(out, "replayed 0, failed 1") {
		t.Fatalf("replay before the fix: %s", out)
	}
	// Fix the model, roll the ingest onto it, then replay.
	os.WriteFile(filepath.Join(models, "customer.json"), []byte(readFile(t, filepath.Join(example, "models", "customer.json"))), 0o644)
	ingest.Signal(syscall.SIGTERM)
	<-ingest.Done()
	f.ingest("ingest-2").WaitStderr("streaming changes", 30*time.Second)
	out, err = f.remix("dlq", "replay", "shop")
	if err != nil || !strings.Contains(out, "failed 0") || strings.Contains(out, "replayed 0") {
		t.Fatalf("replay after the fix (%v): %s", err, out)
	}
	f.exec(f.src, `UPDATE customers SET notes = 'flows again' WHERE id = 2`)
	f.waitConverged(30 * time.Second)
	var email string
	f.dst.QueryRow(f.ctx, `SELECT email_address FROM dim_customer WHERE customer_key = 2`).Scan(&email)
	if email != "later@example.com" {
		t.Fatalf("the update parked behind the bad insert was lost or reordered: email %q", email)
	}
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTruncateReplicates: a TRUNCATE of a source table empties its target
// table at the same point of every partition's order: rows written before it
// are gone, rows written after it stay.
func TestTruncateReplicates(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	f.ingest("ingest").WaitStderr("streaming changes", 30*time.Second)
	f.pusher("pusher-1")
	f.pusher("pusher-2")
	f.exec(f.src, `INSERT INTO customers (full_name) SELECT 'before ' || g FROM generate_series(1, 300) g`)
	f.exec(f.src, `INSERT INTO orders (total, status) SELECT g, 'new' FROM generate_series(1, 300) g`)
	f.exec(f.src, `TRUNCATE orders`)
	f.exec(f.src, `INSERT INTO orders (total, status) SELECT g, 'paid' FROM generate_series(1, 50) g`)
	f.waitConverged(60 * time.Second)
	var n int
	f.dst.QueryRow(f.ctx, `SELECT count(*) FROM fact_order WHERE state = 'new'`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows from before the truncate survived", n)
	}
}

// httpAddr reads the address a process logged it listens on.
func httpAddr(t *testing.T, p interface {
	WaitStderr(string, time.Duration)
	Stderr() string
}) string {
	t.Helper()
	p.WaitStderr("http listening", 30*time.Second)
	s := p.Stderr()
	i := strings.Index(s, "addr=")
	return strings.Fields(s[i+len("addr="):])[0]
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadinessFollowsTheWork: /readyz says ready only when the process
// does its job: a pusher whose target table is missing is not ready, and
// becomes ready once the table exists.
func TestReadinessFollowsTheWork(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	f.exec(f.dst, `DROP TABLE fact_order`)
	pusher := f.pusher("pusher")
	addr := httpAddr(t, pusher)
	waitFor(t, "the pusher to report the missing table", 30*time.Second, func() bool {
		code, body := get(t, "http://"+addr+"/readyz")
		return code == 503 && strings.Contains(body, "table public.fact_order does not exist")
	})
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("healthz = %d while the process is up", code)
	}
	f.exec(f.dst, readFile(t, filepath.Join(example, "target.sql")))
	waitFor(t, "the pusher to become ready", 60*time.Second, func() bool {
		code, _ := get(t, "http://"+addr+"/readyz")
		return code == 200
	})
	ingest := f.ingest("ingest")
	iaddr := httpAddr(t, ingest)
	waitFor(t, "the ingest to become ready", 30*time.Second, func() bool {
		code, body := get(t, "http://"+iaddr+"/readyz")
		return code == 200 && strings.Contains(body, "shop: streaming")
	})
	code, metrics := get(t, "http://"+iaddr+"/metrics")
	if code != 200 || !strings.Contains(metrics, `remix_ingest_leader{system="shop"} 1`) {
		t.Fatalf("metrics (%d):\n%.2000s", code, metrics)
	}
}

// TestLostSlotStopsLoudlyAndResetRecovers: when the slot disappears the
// ingest stops reading that source, says so in its log and readiness, and
// creates no slot on its own; `remix reset` then starts the source over
// with a fresh snapshot and the warehouse converges.
func TestLostSlotStopsLoudlyAndResetRecovers(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	f.exec(f.src, `INSERT INTO customers (full_name) VALUES ('before')`)
	ingest := f.ingest("ingest")
	ingest.WaitStderr("streaming changes", 30*time.Second)
	f.pusher("pusher")
	f.waitConverged(30 * time.Second)
	ingest.Signal(syscall.SIGTERM)
	<-ingest.Done()
	var slot string
	f.src.QueryRow(f.ctx, `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`).Scan(&slot)
	testenv.WaitSlotReleased(t, f.src, slot)
	f.exec(f.src, `SELECT pg_drop_replication_slot('`+slot+`')`)
	f.exec(f.src, `INSERT INTO customers (full_name) VALUES ('while the slot was gone')`)

	second := f.ingest("ingest-2")
	addr := httpAddr(t, second)
	second.WaitStderr("SOURCE STOPPED", 30*time.Second)
	code, body := get(t, "http://"+addr+"/readyz")
	if code != 503 || !strings.Contains(body, "shop: stopped") {
		t.Fatalf("readyz %d: %s", code, body)
	}
	var slots int
	f.src.QueryRow(f.ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`).Scan(&slots)
	if slots != 0 {
		t.Fatal("the ingest created a slot by itself")
	}
	second.Signal(syscall.SIGTERM)
	<-second.Done()
	out, err := f.remix("reset", "shop")
	if err != nil || !strings.Contains(out, "shop reset") {
		t.Fatalf("reset (%v): %s", err, out)
	}
	f.ingest("ingest-3").WaitStderr("snapshot read", 30*time.Second)
	f.waitConverged(30 * time.Second)
}

// TestQuickstart runs the README's first command the way a newcomer would.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	testenv.PostgresURL(t)
	cmd := exec.Command("../../scripts/quickstart.sh")
	cmd.Env = append(os.Environ(), "QUICKSTART_EXIT=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "in the warehouse, with its own column names") {
		t.Fatalf("quickstart (%v):\n%s", err, out)
	}
}

// TestTargetRefusalIsReplayed: the warehouse refuses a row (a CHECK
// constraint); the row goes to the warehouse's dead-letter queue while the
// rest flows, later changes of the row wait behind it, and once the target
// is fixed `remix dlq replay warehouse` has the pushers apply them in order.
func TestTargetRefusalIsReplayed(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	f.exec(f.dst, `ALTER TABLE fact_order ADD CONSTRAINT small CHECK (amount < 1000)`)
	f.ingest("ingest").WaitStderr("streaming changes", 30*time.Second)
	f.pusher("pusher")
	f.exec(f.src, `INSERT INTO orders (id, total, status) VALUES (1, 10, 'new'), (2, 5000, 'new'), (3, 20, 'new')`)
	f.exec(f.src, `UPDATE orders SET status = 'paid' WHERE id = 2`)
	f.exec(f.src, `INSERT INTO orders (id, total, status) VALUES (4, 30, 'new')`)
	waitFor(t, "the orders the warehouse accepts", 30*time.Second, func() bool {
		var n int
		f.dst.QueryRow(f.ctx, `SELECT count(*) FROM fact_order`).Scan(&n)
		return n == 3
	})
	// The update carries the whole row: it supersedes the refused insert
	// (kept aside, not lost), and is refused in turn.
	waitFor(t, "the refused order's newest version in the dead-letter queue", 30*time.Second, func() bool {
		out, _ := f.remix("dlq", "list", "--system", "warehouse")
		return strings.Count(out, "warehouse ") == 1 && strings.Contains(out, `violates check constraint "small"`) &&
			f.rdb.XLen(f.ctx, f.ns+":{dlq:warehouse}:superseded").Val() == 1
	})
	f.exec(f.dst, `ALTER TABLE fact_order DROP CONSTRAINT small`)
	out, err := f.remix("dlq", "replay", "warehouse")
	if err != nil || !strings.Contains(out, "replay requested for 1 key;") {
		t.Fatalf("replay (%v): %s", err, out)
	}
	f.waitConverged(30 * time.Second)
	if out, _ := f.remix("dlq", "list", "--system", "warehouse"); f.deadLetterRows(out) != 0 {
		t.Fatalf("dead letters left after the replay:\n%s", out)
	}
}
