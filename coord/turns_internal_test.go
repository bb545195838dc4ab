package coord

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/testenv"
)

// TestWorkersTakeTurnsAndGiveBackWhatTheyCannotTake: when a batch fills
// from one partition's held-back entries, the worker gives the other
// partitions it claimed back at once, for the other workers, and the
// partitions get their turns in order of their last one, so all of them
// progress alike.
func TestWorkersTakeTurnsAndGiveBackWhatTheyCannotTake(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	c, err := New(rdb, Config{Namespace: ns, Partitions: 4, LeaseTTL: 3 * time.Second, ReadBlock: 50 * time.Millisecond, MaxBatch: 2,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t)
	cs := c.NewConsumer("tgt", []string{"m"})
	cs.SetWorkers(2)
	if err := c.EnsureGroups(ctx, "m", []string{"tgt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.rebalance(ctx); err != nil {
		t.Fatal(err)
	}
	if len(cs.Owned()) != 4 {
		t.Fatalf("owns %v", cs.Owned())
	}
	cs.pending = make([][]cursorMove, 2)
	cs.writes = map[int]time.Time{}
	cs.behind.Store(true)
	cs.mu.Lock()
	for _, p := range cs.owned { // six objects held back on every partition
		for i := range 6 {
			p.backlog = append(p.backlog, Delivery{Model: p.model, Partition: p.index, ID: "1-0", Index: i, Count: 6, stream: p.stream, gen: p.gen})
		}
	}
	cs.mu.Unlock()
	claimed := func(w int) (n int) {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		for _, p := range cs.owned {
			if cs.mine(p, w) {
				n++
			}
		}
		return n
	}
	var order []int
	take := func(w int) {
		t.Helper()
		batch, err := cs.fetch(ctx, w)
		if err != nil || len(batch) != 2 {
			t.Fatalf("worker %d: batch %v, %v; want 2 objects", w, batch, err)
		}
		for _, d := range batch[1:] {
			if d.Partition != batch[0].Partition || d.Index != batch[0].Index+1 {
				t.Fatalf("worker %d: batch %+v, want two objects of one partition in order", w, batch)
			}
		}
		if got := claimed(w); got != 1 {
			t.Fatalf("worker %d holds %d partitions while writing one", w, got)
		}
		order = append(order, batch[0].Partition)
		cs.doneWrite(w)
		cs.unclaim(w, nil)
	}
	// Worker 0 claims two partitions (its share) and writes one; worker 1
	// can then claim three and writes one of them; and so on.
	for range 4 {
		take(0)
		take(1)
	}
	seen := map[int]int{}
	for i, p := range order {
		seen[p]++
		if i == 3 && len(seen) != 4 {
			t.Fatalf("turns %v: every partition should have had one in the first four batches", order)
		}
	}
	for p, n := range seen {
		if n != 2 {
			t.Fatalf("turns %v: partition %d had %d, want 2 each", order, p, n)
		}
	}
}
