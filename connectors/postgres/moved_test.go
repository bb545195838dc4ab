package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/internal/testenv"
)

func TestSnapshotSees(t *testing.T) {
	t.Parallel()
	const epoch = uint64(3) << 32
	for _, c := range []struct {
		name string
		xmax uint64
		xip  []uint64
		xid  uint32
		want bool
	}{
		{"finished", 1000, nil, 900, true},
		{"in progress", 1000, []uint64{900}, 900, false},
		{"another in progress", 1000, []uint64{901}, 900, true},
		{"at xmax", 1000, nil, 1000, false},
		{"above xmax", 1000, nil, 1001, false},
		{"later epoch, finished", epoch + 50, nil, 40, true},
		{"later epoch, in progress", epoch + 50, []uint64{epoch + 40}, 40, false},
		{"id of the previous epoch, finished", epoch + 50, nil, 0xFFFFFFF0, true},
		{"id of the previous epoch, in progress", epoch + 50, []uint64{epoch - 16}, 0xFFFFFFF0, false},
		{"later epoch, above xmax", epoch + 50, nil, 60, false},
	} {
		if got := snapshotSees(c.xmax, c.xip, c.xid); got != c.want {
			t.Errorf("%s: snapshotSees(%d, %v, %d) = %v, want %v", c.name, c.xmax, c.xip, c.xid, got, c.want)
		}
	}
}

// TestXidVisible: a transaction in progress is not visible to a new
// snapshot; once committed it is.
func TestXidVisible(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := connect(t, url).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var full uint64
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::numeric`).Scan(&full); err != nil {
		t.Fatal(err)
	}
	xid := uint32(full)
	if visible, err := xidVisible(ctx, conn, xid); err != nil || visible {
		t.Fatalf("open transaction %d: visible %v, %v", xid, visible, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if visible, err := xidVisible(ctx, conn, xid); err != nil || !visible {
		t.Fatalf("committed transaction %d: visible %v, %v", xid, visible, err)
	}
}
