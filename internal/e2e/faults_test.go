package e2e

import (
	"context"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/testenv"
)

// TestKillEverythingDuringLoad kills the ingest ten times and the pushers
// ten times with SIGKILL at random moments while 10 000 changes are made;
// after the load the warehouse equals the shop, row for row.
func TestKillEverythingDuringLoad(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	var mu sync.Mutex
	procs := map[string]*testenv.Process{}
	start := func(role string, n int) {
		name := role + "-" + strconv.Itoa(n)
		var p *testenv.Process
		if role == "ingest" {
			p = f.ingest(name)
		} else {
			p = f.pusher(name)
		}
		mu.Lock()
		procs[role] = p
		mu.Unlock()
	}
	start("ingest", 0)
	start("pusher", 0)
	second := f.pusher("pusher-standing") // a second pusher that is never killed

	loadDone := make(chan error, 1)
	go func() { loadDone <- f.load(f.ctx, 3, 10000, 800) }() // about 12 s
	r := mrand.New(mrand.NewPCG(42, 7))
	kills := map[string]int{}
	for i := 0; i < 20; i++ {
		time.Sleep(time.Duration(200+r.IntN(500)) * time.Millisecond)
		role := []string{"ingest", "pusher"}[i%2]
		mu.Lock()
		p := procs[role]
		mu.Unlock()
		p.Kill()
		kills[role]++
		start(role, kills[role])
	}
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the ingest %d times and a pusher %d times during the load", kills["ingest"], kills["pusher"])
	f.waitConverged(120 * time.Second)
	_ = second
}

// TestStandbyIngestTakesOver runs two ingests; killing the leader hands the
// source to the standby, and the slot is never read by both.
func TestStandbyIngestTakesOver(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	a := f.ingest("ingest-a")
	a.WaitStderr("streaming changes", 30*time.Second)
	b := f.ingest("ingest-b")
	b.WaitStderr("standing by", 30*time.Second)
	f.pusher("pusher")

	// Watch the slot: at most one reader at any time.
	var slot string
	f.src.QueryRow(f.ctx, `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`).Scan(&slot)
	var maxReaders atomic.Int64
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			var n int64
			f.src.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_replication WHERE application_name = $1`, "remix-ingest-"+slot).Scan(&n)
			if n > maxReaders.Load() {
				maxReaders.Store(n)
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	loadDone := make(chan error, 1)
	go func() { loadDone <- f.load(f.ctx, 4, 3000, 1000) }()
	time.Sleep(time.Second)
	a.Kill()
	killed := time.Now()
	b.WaitStderr("streaming changes", 30*time.Second)
	t.Logf("the standby ingest took over %.2fs after the leader was killed (lock TTL 1s)", time.Since(killed).Seconds())
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	f.waitConverged(60 * time.Second)
	close(stopWatch)
	<-watchDone
	if n := maxReaders.Load(); n > 1 {
		t.Fatalf("the slot was read by %d ingests at once", n)
	}
}

// TestPostgresCrashRestart stops the source PostgreSQL with -m immediate
// (as a crash would) in the middle of the load and starts it again; the
// target still ends equal to the source.
func TestPostgresCrashRestart(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgres(t)
	srcURL := pg.NewDatabase(t)
	f := newFleet(t, fleetOptions{env: []string{"SHOP_DSN=" + srcURL}})
	f.src = pool(t, srcURL)
	f.exec(f.src, readFile(t, example+"/source.sql"))
	f.exec(f.src, `ALTER TABLE customers ALTER COLUMN notes SET STORAGE EXTERNAL`)
	ingest := f.ingest("ingest")
	ingest.WaitStderr("streaming changes", 30*time.Second)
	f.pusher("pusher")

	// Load in rounds; a round cut by the crash is retried on a new pool.
	var committed atomic.Int64
	round := func(seed uint64) {
		for attempt := 0; attempt < 50; attempt++ {
			err := f.load(f.ctx, seed, 300, 1500)
			if err == nil {
				committed.Add(300)
				return
			}
			time.Sleep(200 * time.Millisecond)
			f.src.Reset()
		}
		t.Error("the load never got through after the restart")
	}
	round(10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := uint64(11); s < 16; s++ {
			round(s)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	pg.StopImmediate()
	time.Sleep(500 * time.Millisecond)
	pg.Start()
	<-done
	f.waitConverged(120 * time.Second)
	// The crash must have cut the ingest's replication connection, or this
	// test proved nothing.
	if !strings.Contains(ingest.Stderr(), "reading failed; trying again") {
		t.Fatalf("the ingest never saw the crash:\n%s", ingest.Stderr())
	}
	t.Logf("%d changes committed around the crash; the ingest reconnected and the target converged", committed.Load())
}

// TestStalledPusherIsFenced freezes a pusher (SIGSTOP) for longer than its
// lease five times during the load, each time letting another pusher take
// its partitions over, then thaws it (SIGCONT) with whatever write it was
// in the middle of. Such a write carries an older fencing token and is
// refused by the target, so the warehouse still ends equal to the shop.
func TestStalledPusherIsFenced(t *testing.T) {
	t.Parallel()
	// A tight shared rate limit keeps the pushers waiting inside their
	// writes (after the lease check, before the statement goes out) most of
	// the time: where a freeze hurts.
	systems := t.TempDir()
	shop := readFile(t, filepath.Join(example, "systems", "shop.yaml"))
	warehouse := strings.Replace(readFile(t, filepath.Join(example, "systems", "warehouse.yaml")),
		"  max_open_connections: 4\n", "  max_open_connections: 4\n  rate_limit: 20\n", 1)
	if !strings.Contains(warehouse, "rate_limit: 20") {
		t.Fatal("the example's warehouse.yaml changed: set the rate limit another way")
	}
	for name, text := range map[string]string{"shop.yaml": shop, "warehouse.yaml": warehouse} {
		if err := os.WriteFile(filepath.Join(systems, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFleet(t, fleetOptions{env: []string{"SYSTEMS_DIR=" + systems}})
	f.ingest("ingest")
	a := f.pusher("pusher-a")
	f.pusher("pusher-b")
	a.WaitStderr("pushing", 30*time.Second)

	loadDone := make(chan error, 1)
	go func() { loadDone <- f.load(f.ctx, 5, 6000, 500) }() // about 12 s
	r := mrand.New(mrand.NewPCG(5, 11))
	for i := 0; i < 5; i++ {
		time.Sleep(time.Duration(300+r.IntN(700)) * time.Millisecond)
		a.Signal(syscall.SIGSTOP)
		time.Sleep(2500 * time.Millisecond) // lease TTL 1.5 s, then a tick for the takeover
		a.Signal(syscall.SIGCONT)
	}
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	f.waitConverged(120 * time.Second)
	select {
	case <-a.Done():
		t.Fatalf("the thawed pusher exited:\n%s", a.Stderr())
	default:
	}
	refused := strings.Count(a.Stderr(), "stalled past its lease")
	t.Logf("writes of the thawed pusher refused as fenced: %d", refused)
	if refused == 0 {
		t.Fatal("no freeze landed inside a write: fencing was not exercised")
	}
}
