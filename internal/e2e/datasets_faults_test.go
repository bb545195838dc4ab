package e2e

import (
	"database/sql"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	rblob "github.com/sqlpipe/remix/connectors/blob"
	"github.com/sqlpipe/remix/internal/testenv"
)

// Four pushers write a dataset on the S3 API server while a load runs,
// and are killed with SIGKILL one after another and started again. In the
// end every file is whole, the latest state holds one row per key and
// equals the source table: nothing lost, nothing doubled. REMIX_BENCH_ROWS
// sizes it as the benchmark (100 000 rows, 12 kills).
func TestDatasetsSurvivePushersKilled(t *testing.T) {
	t.Parallel()
	rows, kills := 4000, 6
	if testenv.Short() {
		rows, kills = 1500, 3
	}
	if n, err := strconv.Atoi(os.Getenv("REMIX_BENCH_ROWS")); err == nil && n > 0 { // the benchmark's size: 100 000
		rows, kills = n, 12
	}
	f := newLakeFleet(t, binaries(t), rblob.TypeS3, 8, map[string]string{"LAKE_FORMAT": rblob.FormatParquet})
	f.start("ingest", "ingest")
	pushers := make([]*testenv.Process, 4)
	for i := range pushers {
		pushers[i] = f.start(fmt.Sprintf("pusher-%d", i), "pusher")
	}
	done := make(chan error, 1)
	go func() { done <- peopleBulk(f, rows) }()
	r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for k := 0; k < kills; k++ {
		select {
		case <-f.ctx.Done():
			t.Fatal(f.ctx.Err())
		case <-time.After(time.Duration(1500+r.IntN(1500)) * time.Millisecond):
		}
		i := r.IntN(len(pushers))
		pushers[i].Kill()
		pushers[i] = f.start(fmt.Sprintf("pusher-%d-%d", i, k), "pusher")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	files := f.waitEqual(4 * time.Minute)
	dir, _, err := f.fetch()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := f.dataset.DuckDBSource(filepath.ToSlash(dir) + "/")
	var changes, distinct, keys, latestRows int
	if err := db.QueryRowContext(f.ctx, `SELECT count(*), count(DISTINCT (_remix_key, _remix_version)), count(DISTINCT _remix_key) FROM `+src).Scan(&changes, &distinct, &keys); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(f.ctx, `SELECT count(*) - count(DISTINCT id) FROM (`+f.dataset.DuckDBQuery(filepath.ToSlash(dir)+"/")+`)`).Scan(&latestRows); err != nil {
		t.Fatal(err)
	}
	if latestRows != 0 {
		t.Fatalf("%d keys appear twice in the latest state", latestRows)
	}
	t.Logf("%d kills: %d files, %d change rows, %d of them repeats of a change another file holds (same key and version), %d keys; the latest state equals the source",
		kills, files, changes, changes-distinct, keys)
}

// peopleBulk inserts rows in transactions of 50, then updates every
// third row and deletes every tenth.
func peopleBulk(f *lakeFleet, n int) error {
	const base = int64(1) << 53
	for i := 0; i < n; i += 50 {
		tx, err := f.src.Begin(f.ctx)
		if err != nil {
			return err
		}
		for j := i; j < min(i+50, n); j++ {
			if _, err := tx.Exec(f.ctx, `INSERT INTO people (id, name, balance, device_id, updated_at) VALUES ($1, $2, $3, $4, now())`,
				base+int64(j), "p"+strconv.Itoa(j), fmt.Sprintf("%d.%08d", j, j), fmt.Sprint(uint64(1)<<63+uint64(j))); err != nil {
				tx.Rollback(f.ctx)
				return err
			}
		}
		if err := tx.Commit(f.ctx); err != nil {
			return err
		}
	}
	for i := 0; i < n; i += 3 {
		if _, err := f.src.Exec(f.ctx, `UPDATE people SET name = name || ' updated', balance = balance * 2 WHERE id = $1`, base+int64(i)); err != nil {
			return err
		}
	}
	for i := 0; i < n; i += 10 {
		if _, err := f.src.Exec(f.ctx, `DELETE FROM people WHERE id = $1`, base+int64(i)); err != nil {
			return err
		}
	}
	return nil
}

// A truncate that meets a pusher killed with SIGKILL: the pusher holds
// rows from before the truncate in a file it has not written yet (the
// files roll over every 10 minutes), the truncate is applied, and the
// pusher is killed as soon as the new epoch is in the store. The rows
// from before the truncate must not come back: the partition reaches the
// truncate only once they are durable and acknowledged, so the next
// pusher starts after them. The latest state holds only what was inserted
// after the truncate.
func TestTruncateWithHeldRowsAndAKill(t *testing.T) {
	t.Parallel()
	f := newLakeFleet(t, binaries(t), rblob.TypeFile, 2, map[string]string{"LAKE_MAX_FILE_AGE": "10m"})
	f.start("ingest", "ingest").WaitStderr("streaming changes", 30*time.Second)
	first := f.start("pusher-1", "pusher")
	f.exec(`INSERT INTO people (id, name) SELECT g, 'before the truncate ' || g FROM generate_series(1, 40) g`)
	f.exec(`TRUNCATE people`)
	epoch := f.prefix + "people/_remix/epoch"
	waitFor(t, "the truncate in the store", time.Minute, func() bool {
		ok, err := f.bucket.Exists(f.ctx, epoch)
		return err == nil && ok
	})
	first.Kill()
	f.env = append(f.env, "LAKE_MAX_FILE_AGE=1s")
	f.start("pusher-2", "pusher")
	f.exec(`INSERT INTO people (id, name) VALUES (1001, 'after the truncate'), (1002, 'and another')`)
	f.waitEqual(2 * time.Minute)
}
