package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// testSystem builds a mysql system the way the loader would, with the
// spec's defaults.
func testSystem(name, dsn string, recv *mixer.Receiver, push *mixer.PushMixer, settings map[string]any) *config.System {
	s := &config.System{Name: name, Type: Type, Spec: Spec(), Settings: config.Settings{}, Receive: recv, Push: push}
	for _, st := range Spec().Settings {
		if st.Default != nil {
			s.Settings[st.Name] = config.Setting{Value: st.Default}
		}
	}
	s.Settings[SettingDSN] = config.Setting{Value: config.NewSecret(dsn), Set: true}
	for k, v := range settings {
		s.Settings[k] = config.Setting{Value: v, Set: true}
	}
	return s
}

// testDB is a test's own database: its URL, name and a pool.
type testDB struct {
	url, name string
	db        *sql.DB
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	url := testenv.NewMySQLDatabase(t)
	return &testDB{url: url, name: url[strings.LastIndex(url, "/")+1:], db: testenv.OpenMySQL(t, url)}
}

func (d *testDB) exec(t testing.TB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := d.db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", strings.TrimSpace(q), err)
		}
	}
}

// rowJSON reads one row, every column as JSON: numbers as json.Number,
// NULL as nil, text as strings (the query's columns are aliased as the
// map's keys). decimals are written without trailing zeros beyond two.
func rowJSON(ctx context.Context, db *sql.DB, query string, args ...any) (map[string]any, bool, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	cols, _ := rows.ColumnTypes()
	if !rows.Next() {
		return nil, false, rows.Err()
	}
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, false, err
	}
	out := map[string]any{}
	for i, c := range cols {
		switch {
		case raw[i] == nil:
			out[c.Name()] = nil
		case strings.Contains(c.DatabaseTypeName(), "INT"):
			out[c.Name()] = json.Number(raw[i])
		case c.DatabaseTypeName() == "DECIMAL":
			s := string(raw[i])
			if strings.Contains(s, ".") {
				s = strings.TrimRight(s, "0")
				if d := len(s) - strings.Index(s, ".") - 1; d < 2 {
					s += strings.Repeat("0", 2-d)
				}
			}
			out[c.Name()] = json.Number(s)
		default:
			out[c.Name()] = string(raw[i])
		}
	}
	return out, true, rows.Err()
}

// defaultTestHeartbeat keeps idle replication connections answering often.
const defaultTestHeartbeat = 500 * time.Millisecond
