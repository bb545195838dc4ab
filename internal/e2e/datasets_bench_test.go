package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rblob "github.com/sqlpipe/remix/connectors/blob"
	"github.com/sqlpipe/remix/internal/testenv"
)

var benchBuild struct {
	once sync.Once
	dir  string
	err  error
}

// benchBinaries builds the binaries once for the benchmarks.
func benchBinaries(b *testing.B) string {
	b.Helper()
	benchBuild.once.Do(func() {
		if benchBuild.dir, benchBuild.err = os.MkdirTemp("", "remix-bench-bin-"); benchBuild.err != nil {
			return
		}
		if out, err := exec.Command("go", "build", "-o", benchBuild.dir, "github.com/sqlpipe/remix/cmd/...").CombinedOutput(); err != nil {
			benchBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if benchBuild.err != nil {
		b.Fatal(benchBuild.err)
	}
	return benchBuild.dir
}

// BenchmarkDatasets measures a pusher writing a backlog of
// REMIX_BENCH_ROWS rows (100 000 by default) of the example's people
// table to a dataset, with the defaults max_file_bytes 128MiB and
// max_file_age 60s: rows per second from the pusher's start until every
// row is in a complete file, bytes per row in the store, and the pusher's
// peak resident memory. The ingest publishes the rows first (its initial
// snapshot); the pusher starts once their window of entry time is over,
// so that no run waits for a window to close.
//
//	eval "$(scripts/test-servers.sh)"
//	go test ./internal/e2e -run '^$' -bench BenchmarkDatasets -benchtime 1x
func BenchmarkDatasets(b *testing.B) {
	rows := 100_000
	if n, err := strconv.Atoi(os.Getenv("REMIX_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	bin := benchBinaries(b)
	for _, c := range []struct{ store, format string }{
		{rblob.TypeFile, rblob.FormatParquet}, {rblob.TypeFile, rblob.FormatJSONL},
		{rblob.TypeS3, rblob.FormatParquet}, {rblob.TypeS3, rblob.FormatJSONL},
	} {
		b.Run(c.store+"_"+c.format, func(b *testing.B) {
			for range b.N {
				benchDataset(b, bin, c.store, c.format, rows)
			}
		})
	}
}

func benchDataset(b *testing.B, bin, store, format string, rows int) {
	b.StopTimer()
	f := newLakeFleet(b, bin, store, 16, map[string]string{"LAKE_FORMAT": format, "LAKE_MAX_FILE_AGE": "60s", "LAKE_MAX_FILE_BYTES": "128MiB"})
	f.exec(`INSERT INTO people (id, name, balance, score, device_id, active, born, updated_at, attrs)
		SELECT (1::bigint << 53) + i, 'person ' || i, i * 1.25, i / 7.0, 9223372036854775808::numeric + i, i % 2 = 0,
			DATE '2000-01-01' + (i % 9000), now() - i * interval '1 second', jsonb_build_object('i', i, 'tag', 'bench')
		FROM generate_series(1, $1) i`, rows)
	ingest := f.start("ingest", "ingest")
	ingest.WaitStderr("snapshot durable downstream", 10*time.Minute)
	// Wait for the window of the last entry to end: files of an open
	// window wait for it.
	time.Sleep(time.Until(time.Now().Truncate(time.Minute).Add(time.Minute + time.Second)))
	b.StartTimer()
	start := time.Now()
	pusher := f.start("pusher", "pusher")
	sys := f.cfg.System("lake")
	var inv rblob.Inventory
	for deadline := time.Now().Add(10 * time.Minute); ; {
		invs, err := rblob.Take(f.ctx, sys, f.cfg.Models)
		if err != nil {
			b.Fatal(err)
		}
		if inv = invs[0]; inv.Rows >= int64(rows) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d rows in the store after 10 minutes", inv.Rows, rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	rss := peakRSS(b, pusher)
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(inv.Bytes)/float64(rows), "bytes/row")
	b.ReportMetric(float64(rss)/(1<<20), "MiB-pusher-peak-rss")
	b.ReportMetric(float64(inv.Files), "files")
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(b *testing.B, p *testenv.Process) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
