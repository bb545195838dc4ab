package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/connectortest"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// itemsSource makes a database with table items (id, name, spare) on the
// server at serverURL ("" for the shared one) and a system reading it.
func itemsSource(t *testing.T, serverURL string, settings map[string]any) (*testDB, func(context.Context, connectors.Checkpoints) (connectors.Source, error)) {
	t.Helper()
	var d *testDB
	if serverURL == "" {
		d = newTestDB(t)
	} else {
		url := testenv.StartMariaDBDatabase(t, serverURL)
		d = &testDB{url: url, name: url[strings.LastIndex(url, "/")+1:], db: testenv.OpenMySQL(t, url)}
	}
	d.exec(t, `CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(100), spare INT)`)
	model, err := mixer.CompileModel("mem:///item.json", []byte(connectortest.ItemSchema))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{
		{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath("name"), Field: "name"},
	})
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	recv.Add(d.name+".items", rule)
	if settings == nil {
		settings = map[string]any{}
	}
	if _, ok := settings[SettingInitialSnap]; !ok {
		settings[SettingInitialSnap] = false
	}
	settings[SettingHeartbeat] = defaultTestHeartbeat
	sys := testSystem(testenv.UniqueName("src"), d.url, recv, nil, settings)
	return d, func(ctx context.Context, cps connectors.Checkpoints) (connectors.Source, error) {
		src, err := NewSource(sys, connectors.SourceDeps{Checkpoints: cps})
		if err != nil {
			return nil, err
		}
		if err := src.Open(ctx); err != nil {
			return nil, err
		}
		return src, nil
	}
}

// TestSourceConformance runs the source suite: each location a database of
// its own with table items, read through a system of its own. Losing the
// position purges the binary logs of a private server past the source's
// position (on a private server: the shared one keeps its logs for
// everyone); an undecodable change is an update after the mapped column
// name was dropped (the source cannot deliver it whole).
func TestSourceConformance(t *testing.T) {
	t.Parallel()
	connectortest.RunSource(t, connectortest.SourceHarness{
		Features: connectortest.SourceFeatures{LosePosition: true, Undecodable: true},
		Create: func(t *testing.T) connectortest.SourceLocation {
			server := ""
			if strings.Contains(t.Name(), "LostPosition") {
				server = testenv.StartMariaDB(t).URL()
			}
			d, open := itemsSource(t, server, nil)
			var mu sync.Mutex
			do := func(ctx context.Context, q string, args ...any) error {
				mu.Lock()
				defer mu.Unlock()
				_, err := d.db.ExecContext(ctx, q, args...)
				return err
			}
			return connectortest.SourceLocation{
				Location: d.name + ".items",
				Insert: func(ctx context.Context, id int64, name string) error {
					return do(ctx, `INSERT INTO items (id, name) VALUES (?, ?)`, id, name)
				},
				Update: func(ctx context.Context, id int64, name string) error {
					return do(ctx, `UPDATE items SET name = ? WHERE id = ?`, name, id)
				},
				Delete: func(ctx context.Context, id int64) error { return do(ctx, `DELETE FROM items WHERE id = ?`, id) },
				Open:   open,
				LosePosition: func(ctx context.Context) error {
					// A transaction after the source's position, then its
					// binary log purged.
					return purgeAfter(ctx, d.db, do)
				},
				Undecodable: func(ctx context.Context, id int64) error {
					if err := do(ctx, `ALTER TABLE items DROP COLUMN name`); err != nil {
						return err
					}
					return do(ctx, `UPDATE items SET spare = 1 WHERE id = ?`, id)
				},
			}
		},
	})
}

// purgeAfter writes a transaction into a binary log of its own and purges
// it: the changes after a source's position are gone.
func purgeAfter(ctx context.Context, db *sql.DB, do func(context.Context, string, ...any) error) error {
	for _, q := range []string{`FLUSH BINARY LOGS`, `CREATE TABLE lost (id INT PRIMARY KEY)`, `INSERT INTO lost VALUES (1)`, `FLUSH BINARY LOGS`} {
		if err := do(ctx, q); err != nil {
			return err
		}
	}
	var file string
	var size any
	if err := db.QueryRowContext(ctx, `SHOW MASTER STATUS`).Scan(&file, &size, new(any), new(any)); err != nil {
		return fmt.Errorf("show master status: %w", err)
	}
	// A log still read by a dump thread is not purged: the closed
	// source's thread ends a moment after its client went away.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := do(ctx, `PURGE BINARY LOGS TO '`+file+`'`); err != nil {
			return err
		}
		var first string
		if err := db.QueryRowContext(ctx, `SHOW BINARY LOGS`).Scan(&first, &size); err != nil {
			return err
		}
		if first == file {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("binary log %s is still there", first)
		}
	}
}
