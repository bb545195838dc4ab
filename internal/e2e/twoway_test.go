package e2e

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/internal/testenv"
)

const twoWayExample = "../../examples/postgresql_two_way"

// audit records every write to a table, for counting them.
const audit = `CREATE TABLE remix_audit (n bigserial PRIMARY KEY, key bigint, op text, origin text);
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO remix_audit (key, op, origin) VALUES (
    CASE WHEN TG_OP = 'DELETE' THEN (to_jsonb(OLD)->>TG_ARGV[0])::bigint ELSE (to_jsonb(NEW)->>TG_ARGV[0])::bigint END,
    TG_OP, pg_replication_origin_session_is_setup()::text);
  RETURN NULL;
END $$;`

// newTwoWayFleet is the two-way example on two fresh databases: shop
// (public.products) and erp (inventory.items), both sources and targets of
// model product, with an audit of every write to each table.
func newTwoWayFleet(t *testing.T) *fleet {
	t.Helper()
	shopURL, erpURL := testenv.NewDatabase(t), testenv.NewDatabase(t)
	rdb, ns := testenv.Redis(t)
	f := &fleet{t: t, bin: binaries(t), rdb: rdb, ns: ns, ctx: testenv.Context(t), src: pool(t, shopURL), dst: pool(t, erpURL)}
	f.exec(f.src, readFile(t, filepath.Join(twoWayExample, "shop.sql")))
	f.exec(f.dst, readFile(t, filepath.Join(twoWayExample, "erp.sql")))
	f.exec(f.src, audit+` CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON products FOR EACH ROW EXECUTE FUNCTION audit_row('id')`)
	f.exec(f.dst, audit+` CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON inventory.items FOR EACH ROW EXECUTE FUNCTION audit_row('sku_id')`)
	f.env = []string{
		"SHOP_DSN=" + shopURL, "ERP_DSN=" + erpURL, "SHOP_SLOT=" + testenv.UniqueName("shop"), "ERP_SLOT=" + testenv.UniqueName("erp"),
		"REDIS_URL=" + testenv.RedisURL(t), "REMIX_NAMESPACE=" + ns, "REMIX_PARTITIONS=4",
		"SYSTEMS_DIR=" + filepath.Join(twoWayExample, "systems"), "MODELS_DIR=" + filepath.Join(twoWayExample, "models"),
		"REMIX_LOCK_TTL=1s", "REMIX_LEASE_TTL=1500ms", "LOG_LEVEL=info",
	}
	return f
}

const (
	shopRows = `SELECT id || '|' || coalesce(title, '<null>') || '|' || coalesce(price::text, '<null>') || '|' || coalesce(active::text, '<null>') FROM products ORDER BY id`
	erpRows  = `SELECT sku_id || '|' || coalesce(label, '<null>') || '|' || coalesce(list_price::text, '<null>') || '|' || coalesce(sellable::text, '<null>') FROM inventory.items ORDER BY sku_id`
)

func (f *fleet) twoWayDiff() string {
	a, err1 := rows(f.ctx, f.src, shopRows)
	b, err2 := rows(f.ctx, f.dst, erpRows)
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("query: %v %v", err1, err2)
	}
	if strings.Join(a, "\n") == strings.Join(b, "\n") {
		return ""
	}
	return fmt.Sprintf("shop %d rows, erp %d rows; shop %.400v; erp %.400v", len(a), len(b), a, b)
}

// editor changes one side at random over keys 1..40 until stop: updates
// (NULLs included), deletes and inserts, in small transactions.
func editor(ctx context.Context, p *pgxpool.Pool, seed uint64, upsert, del string, stop <-chan struct{}) error {
	r := mrand.New(mrand.NewPCG(seed, 9))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		case <-time.After(time.Duration(5+r.IntN(10)) * time.Millisecond):
		}
		id := 1 + r.IntN(40)
		var err error
		switch k := r.IntN(10); {
		case k < 1:
			_, err = p.Exec(ctx, del, id)
		default:
			var name, price, active any = fmt.Sprintf("n%d-%d", seed, i), fmt.Sprintf("%d.%02d", r.IntN(100), r.IntN(100)), r.IntN(2) == 0
			if k < 2 {
				name = nil
			}
			_, err = p.Exec(ctx, upsert, id, name, price, active)
		}
		if err != nil {
			return err
		}
	}
}

// TestTwoWayConvergesWithoutEcho: two PostgreSQL databases with their own
// table and column names are both source and target of one model. Both
// sides are edited concurrently on the same keys (updates, NULLs, deletes,
// inserts), the whole fleet is killed with SIGKILL in the middle and
// started again; at the end both sides hold the same rows. Then one more
// update on one side is written exactly once on the other and never again
// on its own.
func TestTwoWayConvergesWithoutEcho(t *testing.T) {
	t.Parallel()
	f := newTwoWayFleet(t)
	f.exec(f.src, `INSERT INTO products SELECT g, 'p' || g, g, true FROM generate_series(1, 30) g`)
	ing, push := f.ingest("ingest"), f.pusher("pusher")
	push.WaitStderr("pushing", 30*time.Second)
	waitFor(t, "the first copy", 60*time.Second, func() bool { return f.twoWayDiff() == "" })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, side := range []struct {
		p           *pgxpool.Pool
		seed        uint64
		upsert, del string
	}{
		{f.src, 1, `INSERT INTO products VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET title = $2, price = $3, active = $4`, `DELETE FROM products WHERE id = $1`},
		{f.dst, 2, `INSERT INTO inventory.items VALUES ($1, $2, $3, $4) ON CONFLICT (sku_id) DO UPDATE SET label = $2, list_price = $3, sellable = $4`, `DELETE FROM inventory.items WHERE sku_id = $1`},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := editor(f.ctx, side.p, side.seed, side.upsert, side.del, stop); err != nil {
				errs <- err
			}
		}()
	}
	time.Sleep(3 * time.Second)
	ing.Kill()
	push.Kill()
	f.ingest("ingest-2")
	f.pusher("pusher-2")
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for d := f.twoWayDiff(); d != ""; d = f.twoWayDiff() {
		if time.Now().After(deadline) {
			t.Fatalf("the two sides did not converge: %s", d)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// One more update at the shop: once at the ERP, never back at the shop.
	var shopMark, erpMark int64
	f.src.QueryRow(f.ctx, `SELECT coalesce(max(n), 0) FROM remix_audit`).Scan(&shopMark)
	f.dst.QueryRow(f.ctx, `SELECT coalesce(max(n), 0) FROM remix_audit`).Scan(&erpMark)
	f.exec(f.src, `INSERT INTO products VALUES (99, 'the last word', 9.99, true)`)
	waitFor(t, "the last update at the ERP", 30*time.Second, func() bool {
		var n int
		f.dst.QueryRow(f.ctx, `SELECT count(*) FROM inventory.items WHERE sku_id = 99 AND label = 'the last word'`).Scan(&n)
		return n == 1
	})
	time.Sleep(3 * time.Second) // time for an echo to come back, were there one
	var atShop, atERP int
	f.src.QueryRow(f.ctx, `SELECT count(*) FROM remix_audit WHERE n > $1`, shopMark).Scan(&atShop)
	f.dst.QueryRow(f.ctx, `SELECT count(*) FROM remix_audit WHERE n > $1`, erpMark).Scan(&atERP)
	if atShop != 1 || atERP != 1 {
		t.Fatalf("the last update was written %d times at the shop (want 1: its own) and %d at the ERP (want 1)", atShop, atERP)
	}
	if d := f.twoWayDiff(); d != "" {
		t.Fatalf("the sides differ after the last update: %s", d)
	}
}
