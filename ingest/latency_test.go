package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/metrics"
)

func TestCommitRunsCountEachChange(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Millisecond)
	changes := []connectors.Change{{CommitTime: t1}, {CommitTime: t1}, {}, {CommitTime: t2}, {CommitTime: t1}}
	got := commitRuns(changes)
	want := []commitRun{{t1.UnixNano(), 2}, {t2.UnixNano(), 1}, {t1.UnixNano(), 1}}
	if len(got) != len(want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("run %d: %v, want %v", i, got[i], want[i])
		}
	}
	if runs := commitRuns([]connectors.Change{{}, {}}); len(runs) != 0 {
		t.Fatalf("a snapshot's changes have no commit time, got runs %v", runs)
	}
}

// The ingest's latency histogram observes every change of a batch, from
// its own commit: the first transactions of a gathered batch waited longer
// than its last.
func TestIngestLatencyObservesEveryChange(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	now := time.Now()
	old, recent := now.Add(-3*time.Second), now.Add(-2*time.Millisecond)
	changes := []connectors.Change{{CommitTime: old}, {CommitTime: old}, {CommitTime: recent}}
	j := job{batch: connectors.Batch{CommitTime: recent}, changes: len(changes), commits: commitRuns(changes)}
	observe(m, "shop", j, coord.PublishResult{}, now, nil)
	h := histogram(t, m.IngestLatency.WithLabelValues("shop"))
	if h.GetSampleCount() != 3 {
		t.Fatalf("%d observations, want one per change (3)", h.GetSampleCount())
	}
	var under1s, total uint64
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 1 {
			under1s = b.GetCumulativeCount()
		}
		total = b.GetCumulativeCount()
	}
	if under1s != 1 || total != 3 || h.GetSampleSum() < 6 {
		t.Fatalf("under 1 s: %d (want the recent change only), in all buckets: %d, sum %.3fs (want at least 6 s)", under1s, total, h.GetSampleSum())
	}
}

func histogram(t *testing.T, o prometheus.Observer) *dto.Histogram {
	t.Helper()
	var out dto.Metric
	if err := o.(prometheus.Metric).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram()
}
