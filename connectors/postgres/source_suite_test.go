package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// TestSourceConformance runs the source suite: each location a database of
// its own with table items, read through a system (and slot) of its own.
// Losing the position drops the slot; an undecodable change is a change of
// a row whose mapped column name was dropped (the source cannot deliver it
// whole).
func TestSourceConformance(t *testing.T) {
	t.Parallel()
	model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	connectortest.RunSource(t, connectortest.SourceHarness{
		Features: connectortest.SourceFeatures{LosePosition: true, Undecodable: true},
		Create: func(t *testing.T) connectortest.SourceLocation {
			url := testenv.NewDatabase(t)
			conn := connect(t, url)
			exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, name text, spare int)`)
			rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{
				{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath("name"), Field: "name"},
			})
			if err != nil {
				t.Fatal(err)
			}
			recv := mixer.NewReceiver()
			recv.Add("public.items", rule)
			sys := testSystem(testenv.UniqueName("src"), url, recv, nil, map[string]any{
				SettingInitialSnapshot: false, SettingStatusInterval: 100 * time.Millisecond,
			})
			var mu sync.Mutex // conn is one connection; slot is the last source's
			var slot string
			do := func(ctx context.Context, sql string, args ...any) error {
				mu.Lock()
				defer mu.Unlock()
				_, err := conn.Exec(ctx, sql, args...)
				return err
			}
			return connectortest.SourceLocation{
				Location: "public.items",
				Insert: func(ctx context.Context, id int64, name string) error {
					return do(ctx, `INSERT INTO items (id, name) VALUES ($1, $2)`, id, name)
				},
				Update: func(ctx context.Context, id int64, name string) error {
					return do(ctx, `UPDATE items SET name = $2 WHERE id = $1`, id, name)
				},
				Delete: func(ctx context.Context, id int64) error {
					return do(ctx, `DELETE FROM items WHERE id = $1`, id)
				},
				Open: func(ctx context.Context, cps connectors.Checkpoints) (connectors.Source, error) {
					src, err := NewSource(sys, connectors.SourceDeps{Checkpoints: cps})
					if err != nil {
						return nil, err
					}
					if err := src.Open(ctx); err != nil {
						return nil, err
					}
					mu.Lock()
					slot = src.(*Source).slot
					mu.Unlock()
					return src, nil
				},
				LosePosition: func(ctx context.Context) error {
					mu.Lock()
					defer mu.Unlock()
					testenv.WaitSlotReleased(t, conn, slot)
					_, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot)
					return err
				},
				Undecodable: func(ctx context.Context, id int64) error {
					mu.Lock()
					defer mu.Unlock()
					return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, `ALTER TABLE items DROP COLUMN name`); err != nil {
							return err
						}
						tag, err := tx.Exec(ctx, `UPDATE items SET spare = 1 WHERE id = $1`, id)
						if err == nil && tag.RowsAffected() != 1 {
							err = fmt.Errorf("no row %d", id)
						}
						return err
					})
				},
			}
		},
	})
}
