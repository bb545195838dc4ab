package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRenamedColumnIsDeadLetteredUntilFixed: a column the shop's receive
// mixer reads is renamed while Remix streams. The customers' inserts and
// updates go to the dead-letter queue with the reason (the warehouse gets
// neither a NULL name nor a half-applied update), orders keep flowing, and
// the ingest is not ready and says why, in /readyz and in a metric. Once
// the mixer names the new column and the ingest restarts, a replay
// delivers the held changes and later ones flow.
func TestRenamedColumnIsDeadLetteredUntilFixed(t *testing.T) {
	t.Parallel()
	systems := t.TempDir()
	for _, name := range []string{"shop.yaml", "warehouse.yaml"} {
		if err := os.WriteFile(filepath.Join(systems, name), []byte(readFile(t, filepath.Join(example, "systems", name))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFleet(t, fleetOptions{env: []string{"SYSTEMS_DIR=" + systems}})
	ingest := f.ingest("ingest")
	addr := httpAddr(t, ingest)
	ingest.WaitStderr("streaming changes", 30*time.Second)
	f.pusher("pusher")
	f.exec(f.src, `INSERT INTO customers (id, full_name, email) VALUES (1, 'Ada', 'ada@example.com')`)
	f.waitConverged(30 * time.Second)

	f.exec(f.src, `ALTER TABLE customers RENAME full_name TO display_name`)
	f.exec(f.src, `UPDATE customers SET display_name = 'Ada L', email = 'ada@new.example.com' WHERE id = 1`)
	f.exec(f.src, `INSERT INTO customers (id, display_name, email) VALUES (2, 'Bo', 'bo@example.com')`)
	f.exec(f.src, `INSERT INTO orders (id, customer_id, total, status) VALUES (1, 1, 10, 'new')`)
	waitFor(t, "the order, which does not read the renamed column", 30*time.Second, func() bool {
		var n int
		f.dst.QueryRow(f.ctx, `SELECT count(*) FROM fact_order`).Scan(&n)
		return n == 1
	})
	waitFor(t, "the customers' changes in the dead-letter queue", 30*time.Second, func() bool {
		out, _ := f.remix("dlq", "list", "--system", "shop")
		return strings.Count(out, "shop ") == 2 && strings.Contains(out, "public.customers has no field full_name")
	})
	waitFor(t, "the ingest to say it is degraded", 30*time.Second, func() bool {
		code, body := get(t, "http://"+addr+"/readyz")
		return code == 503 && strings.Contains(body, "shop: degraded: public.customers has no field full_name")
	})
	if code, metrics := get(t, "http://"+addr+"/metrics"); code != 200 || !strings.Contains(metrics, `remix_source_degraded{system="shop"} 1`) {
		t.Fatalf("metrics (%d): no remix_source_degraded 1 for shop", code)
	}
	customers := func() string {
		got, err := rows(f.ctx, f.dst, `SELECT customer_key, name, email_address FROM dim_customer ORDER BY customer_key`)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, " ")
	}
	if got := customers(); got != "(1,Ada,ada@example.com)" {
		t.Fatalf("the warehouse changed without the renamed column: %s", got)
	}

	// The fix: the mixer reads the new name; the ingest restarts on it.
	shop := filepath.Join(systems, "shop.yaml")
	fixed := strings.Replace(readFile(t, shop), "        full_name:\n", "        display_name:\n", 1)
	if fixed == readFile(t, shop) {
		t.Fatal("could not rename the mapping")
	}
	if err := os.WriteFile(shop, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	ingest.Signal(syscall.SIGTERM)
	<-ingest.Done()
	second := f.ingest("ingest-2")
	addr = httpAddr(t, second)
	second.WaitStderr("streaming changes", 30*time.Second)
	out, err := f.remix("dlq", "replay", "shop")
	if err != nil || !strings.Contains(out, "replayed 2") || !strings.Contains(out, "failed 0") {
		t.Fatalf("replay after the fix (%v): %s", err, out)
	}
	f.exec(f.src, `INSERT INTO customers (id, display_name) VALUES (3, 'Cy')`)
	waitFor(t, "the held and the later changes", 30*time.Second, func() bool {
		return customers() == "(1,\"Ada L\",ada@new.example.com) (2,Bo,bo@example.com) (3,Cy,)"
	})
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("readyz after the fix: %d %s", code, body)
	}
}
