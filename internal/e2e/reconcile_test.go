package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/testenv"
)

// dropShopSlot stops an ingest, then drops the shop's slot the way an
// operator or max_slot_wal_keep_size would.
func (f *fleet) dropShopSlot(ingest *testenv.Process) {
	f.t.Helper()
	ingest.Signal(syscall.SIGTERM)
	<-ingest.Done()
	var slot string
	if err := f.src.QueryRow(f.ctx, `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`).Scan(&slot); err != nil {
		f.t.Fatal(err)
	}
	testenv.WaitSlotReleased(f.t, f.src, slot)
	f.exec(f.src, `SELECT pg_drop_replication_slot('`+slot+`')`)
}

func (f *fleet) count(q string) int {
	f.t.Helper()
	var n int
	if err := f.dst.QueryRow(f.ctx, q).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestReconcileRemovesRowsDeletedWhileTheSlotWasGone: row 61 syncs, the
// slot is dropped, row 61 is deleted at the source, `remix reset` and a
// fresh copy leave it in the warehouse. `remix reconcile` shows it without
// changing anything (also while an ingest runs); --apply refuses while an
// ingest reads the shop and, with the ingests stopped, deletes it through
// the streams; the warehouse then equals the shop.
func TestReconcileRemovesRowsDeletedWhileTheSlotWasGone(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	f.exec(f.src, `INSERT INTO customers (id, full_name) VALUES (1, 'Ada'), (2, 'Bo'), (61, 'Sixty-one')`)
	f.exec(f.src, `INSERT INTO orders (id, customer_id, total, status) VALUES (1, 1, 10, 'new'), (7, 61, 70, 'new')`)
	ingest := f.ingest("ingest")
	f.pusher("pusher")
	f.waitConverged(30 * time.Second)

	f.dropShopSlot(ingest)
	f.exec(f.src, `DELETE FROM orders WHERE id = 7`)
	f.exec(f.src, `DELETE FROM customers WHERE id = 61`)
	out, err := f.remix("reset", "shop")
	if err != nil || !strings.Contains(out, "remix reconcile shop") {
		t.Fatalf("reset (%v): %s", err, out)
	}
	second := f.ingest("ingest-2")
	second.WaitStderr("snapshot read", 30*time.Second)
	waitFor(t, "the copy to arrive", 30*time.Second, func() bool {
		return f.count(`SELECT count(*) FROM dim_customer WHERE customer_key IN (1, 2)`) == 2
	})
	if f.count(`SELECT count(*) FROM dim_customer WHERE customer_key = 61`) != 1 {
		t.Fatal("row 61 left the warehouse without reconcile: the test does not show the problem")
	}

	// A dry run takes no lock: it works while the ingest reads, and changes nothing.
	out, err = f.remix("reconcile", "shop")
	if err != nil {
		t.Fatalf("dry run (%v): %s", err, out)
	}
	for _, want := range []string{"dry run", "shop public.customers", "warehouse public.dim_customer: 3 rows, 1 without a source row", "customer_key=61",
		"warehouse public.fact_order: 2 rows, 1 without a source row", "order_key=7", "to delete: 2 rows in 2 target locations"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if f.count(`SELECT count(*) FROM dim_customer WHERE customer_key = 61`) != 1 || f.count(`SELECT count(*) FROM fact_order WHERE order_key = 7`) != 1 {
		t.Fatal("the dry run deleted")
	}

	// --apply never races a reading ingest: it refuses and says why.
	out, err = f.remix("reconcile", "shop", "--apply")
	if err == nil || !strings.Contains(out, "an ingest is reading shop: stop the ingests of shop") {
		t.Fatalf("apply while an ingest reads (%v): %s", err, out)
	}
	second.Signal(syscall.SIGTERM)
	<-second.Done()
	out, err = f.remix("reconcile", "shop", "--apply")
	if err != nil || !strings.Contains(out, "published 2 deletes; every target has applied them") {
		t.Fatalf("apply (%v): %s", err, out)
	}
	if n := f.count(`SELECT count(*) FROM dim_customer WHERE customer_key = 61`) + f.count(`SELECT count(*) FROM fact_order WHERE order_key = 7`); n != 0 {
		t.Fatalf("%d rows deleted at the source are still in the warehouse", n)
	}
	out, err = f.remix("reconcile", "shop")
	if err != nil || !strings.Contains(out, "to delete: 0 rows") {
		t.Fatalf("dry run after apply (%v): %s", err, out)
	}
	f.ingest("ingest-3").WaitStderr("streaming changes", 30*time.Second)
	f.exec(f.src, `INSERT INTO customers (id, full_name) VALUES (61, 'Sixty-one again')`)
	f.waitConverged(30 * time.Second)
}

// TestReconcileKeepsOtherSourcesRows: the warehouse receives customers from
// the shop and from a CRM. After the shop's slot is lost and a shop row is
// deleted meanwhile, reconcile of the shop deletes that row only: the CRM's
// rows, which the shop does not hold, stay.
func TestReconcileKeepsOtherSourcesRows(t *testing.T) {
	t.Parallel()
	crmURL := testenv.NewDatabase(t)
	crm := pool(t, crmURL)
	systems := t.TempDir()
	writeFile(t, filepath.Join(systems, "shop.yaml"), readFile(t, filepath.Join(example, "systems", "shop.yaml")))
	writeFile(t, filepath.Join(systems, "warehouse.yaml"), readFile(t, filepath.Join(example, "systems", "warehouse.yaml")))
	writeFile(t, filepath.Join(systems, "crm.yaml"), `crm:
  type: postgresql
  dsn: ${CRM_DSN}
  max_open_connections: 2
  slot_name: ${CRM_SLOT}
  receive_mixer:
    public.people:
      customer:
        person_id:
          field: id
        display_name:
          field: name
`)
	f := newFleet(t, fleetOptions{env: []string{"SYSTEMS_DIR=" + systems, "CRM_DSN=" + crmURL, "CRM_SLOT=" + testenv.UniqueName("crm")}})
	f.exec(crm, `CREATE TABLE people (person_id bigint PRIMARY KEY, display_name text NOT NULL)`)
	f.exec(crm, `INSERT INTO people VALUES (1001, 'From the CRM'), (1002, 'Also the CRM')`)
	f.exec(f.src, `INSERT INTO customers (id, full_name) VALUES (1, 'Ada'), (61, 'Sixty-one')`)
	ingest := f.ingest("ingest")
	f.pusher("pusher")
	waitFor(t, "both sources to arrive", 30*time.Second, func() bool {
		return f.count(`SELECT count(*) FROM dim_customer`) == 4
	})

	f.dropShopSlot(ingest)
	f.exec(f.src, `DELETE FROM customers WHERE id = 61`)
	if out, err := f.remix("reset", "shop"); err != nil {
		t.Fatalf("reset (%v): %s", err, out)
	}
	out, err := f.remix("reconcile", "shop")
	if err != nil || !strings.Contains(out, "also from crm public.people: a target row is deleted only when no source holds its key") ||
		!strings.Contains(out, "warehouse public.dim_customer: 4 rows, 1 without a source row") || !strings.Contains(out, "customer_key=61") {
		t.Fatalf("dry run (%v): %s", err, out)
	}
	out, err = f.remix("reconcile", "shop", "--apply")
	if err != nil || !strings.Contains(out, "published 1 delete; every target has applied them") {
		t.Fatalf("apply (%v): %s", err, out)
	}
	t.Logf("apply:\n%s", out)
	got, err := rows(f.ctx, f.dst, `SELECT customer_key, name FROM dim_customer ORDER BY customer_key`)
	if err != nil {
		t.Fatal(err)
	}
	if want := "(1,Ada) (1001,\"From the CRM\") (1002,\"Also the CRM\")"; strings.Join(got, " ") != want {
		t.Fatalf("warehouse customers: %s, want %s", strings.Join(got, " "), want)
	}
}
