package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	rblob "github.com/sqlpipe/remix/connectors/blob"
)

// bigText is text that does not compress, stored out of line (TOAST): an
// update that leaves it alone does not carry it.
func bigText() string {
	b := make([]byte, 3000)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// peopleLoad writes every kind of change and value a dataset must keep:
// inserts with NULLs, integers above 2^53, 30-digit decimals, an
// unsigned 64-bit id, timestamps with microseconds, JSON, TOASTed text;
// updates (some that set NULL, some that leave the TOASTed text absent);
// deletes; a key deleted and inserted again.
func peopleLoad(f *lakeFleet, n int) {
	f.t.Helper()
	const base = int64(1) << 53
	for i := 0; i < n; i++ {
		var name, balance, active, bio any
		if i%7 != 0 {
			name = fmt.Sprintf("Person %d, \"quoted\" and ünïcode", i)
		}
		if i%5 != 0 {
			balance = fmt.Sprintf("%d234567890123456789012.%08d", 1+i%9, i) // 30 digits
		}
		if i%3 != 0 {
			active = i%2 == 0
		}
		if i%4 == 0 {
			bio = bigText()
		}
		f.exec(`INSERT INTO people VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			base+int64(i), name, balance, fmt.Sprintf("3.14159265358979323846264338327950288%d", i),
			fmt.Sprintf("%d", uint64(18446744073709551615)-uint64(i)), active,
			time.Date(1970+i%50, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 12, 5, 10, 0, i%60, 123456000, time.UTC), fmt.Sprintf(`{"i": %d, "tags": ["a", "b"], "n": null}`, i), bio)
	}
	for i := 0; i < n; i += 3 { // partial updates: bio stays out
		f.exec(`UPDATE people SET name = $2, balance = balance + 1 WHERE id = $1`, base+int64(i), fmt.Sprintf("Renamed %d", i))
	}
	for i := 1; i < n; i += 5 {
		f.exec(`UPDATE people SET name = NULL, attrs = NULL, updated_at = NULL WHERE id = $1`, base+int64(i))
	}
	for i := 2; i < n; i += 6 {
		f.exec(`DELETE FROM people WHERE id = $1`, base+int64(i))
	}
	f.exec(`INSERT INTO people (id, name, bio) VALUES ($1, 'back again', $2)`, base+2, bigText())
	f.exec(`UPDATE people SET bio = $2 WHERE id = $1`, base+4, bigText())
}

// PostgreSQL to each store: the files, fetched and read with DuckDB
// through the documented latest-state query, give exactly the source
// table.
func TestDatasetsEndToEnd(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ store, format string }{
		{rblob.TypeFile, rblob.FormatParquet},
		{rblob.TypeS3, rblob.FormatParquet},
		{rblob.TypeS3, rblob.FormatJSONL},
		{rblob.TypeGCS, rblob.FormatParquet},
		{rblob.TypeAzure, rblob.FormatJSONL},
	} {
		t.Run(c.store+"_"+c.format, func(t *testing.T) {
			t.Parallel()
			f := newLakeFleet(t, binaries(t), c.store, 4, map[string]string{"LAKE_FORMAT": c.format})
			f.start("ingest", "ingest")
			f.start("pusher", "pusher")
			peopleLoad(f, 120)
			files := f.waitEqual(3 * time.Minute)
			t.Logf("%s %s: the latest state of %d files equals the source", c.store, c.format, files)
			f.checkInventory(files)
			if c.store != rblob.TypeFile {
				return
			}
			// A truncate starts a new epoch: what came before is gone from
			// the latest state, what comes after is there.
			f.exec(`TRUNCATE people`)
			f.exec(`INSERT INTO people (id, name) VALUES (1, 'after the truncate'), (2, 'and another')`)
			f.waitEqual(2 * time.Minute)
		})
	}
}
