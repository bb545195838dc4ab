package stripe

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/connectors/stripe/stripefake"
	"github.com/sqlpipe/remix/internal/testenv"
)

// drain reads batches until the source waits for its next poll, confirming
// each, and returns the changes.
func drain(t *testing.T, src *Source) []connectors.Change {
	t.Helper()
	var out []connectors.Change
	for {
		// Long enough for a page on a loaded machine; the last wait is
		// the one that finds nothing more.
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		b, err := src.Next(ctx)
		cancel()
		if err != nil {
			return out // waiting for the next poll
		}
		out = append(out, b.Changes...)
		if b.Position != "" {
			if err := src.Confirm(context.Background(), b.Position); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCatchUpAndBackfill: without a cursor the source lists every product
// and price, then reads events from where the listing began, a page at a
// time and oldest first; a cursor Stripe no longer has starts a backfill
// again. Events of Remix's own writes carry their origin.
func TestCatchUpAndBackfill(t *testing.T) {
	t.Parallel()
	f := stripefake.New(t)
	sys := stripeSystem(t, loadConfig(t, twoTables, f.URL))
	for i := 0; i < 130; i++ { // more than a page
		dashboard(t, f, http.MethodPost, "/v1/products", formOf("name", "P"+itoa(i), "metadata[id]", itoa(i)))
	}
	deps := sourceDeps()
	src := newSource(sys, deps, nil)
	src.settle, src.every = 0, time.Hour
	ctx := testenv.Context(t)
	if err := src.Open(ctx); err != nil {
		t.Fatal(err)
	}
	got := drain(t, src)
	if len(got) != 130 || src.Progress().SnapshotRows != 130 {
		t.Fatalf("backfill: %d changes, progress %+v", len(got), src.Progress())
	}
	if src.Progress().Snapshotting || src.Progress().ConfirmedPosition == "" {
		t.Fatalf("after the backfill: %+v", src.Progress())
	}

	// New changes, a second apart: the next poll reads them as events,
	// in order.
	var mu sync.Mutex
	clock := time.Now().Add(-time.Hour)
	f.SetClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	})
	p := dashboard(t, f, http.MethodPost, "/v1/products", formOf("name", "New"))
	for i := 0; i < 120; i++ {
		dashboard(t, f, http.MethodPost, "/v1/products/"+p["id"].(string), formOf("name", "New "+itoa(i)))
	}
	sink := testSink(t, sys, nil)
	if err := sink.Write(ctx, records(t, sys, "product", 1, map[string]any{"id": num("900"), "stripe_id": p["id"], "name": "From the database"}, "prod-db", "0/1"), nil); err != nil {
		t.Fatal(err)
	}
	src.lastPoll = time.Time{}
	got = drain(t, src)
	if len(got) != 122 {
		t.Fatalf("catch-up: %d changes, want 122", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Version < got[i-1].Version {
			t.Fatalf("catch-up out of order at %d: %s < %s", i, got[i].Version, got[i-1].Version)
		}
	}
	if last := got[len(got)-1]; last.Origin != "prod-db" || last.Record.Fields["name"] != "From the database" {
		t.Fatalf("Remix's own write came back as %+v", last)
	}
	if got[0].Origin != "" || !got[0].Record.Created {
		t.Fatalf("a dashboard create came back as %+v", got[0])
	}

	// The cursor as stored (golden).
	text, _, _ := deps.Checkpoints.Load(ctx, checkpointName)
	c, err := decodeCursor(text)
	if err != nil || c.Event == "" || c.Fill != nil {
		t.Fatalf("stored cursor %q: %v", text, err)
	}

	// A restart resumes from the stored cursor: nothing is read again.
	again := newSource(sys, connectors.SourceDeps{Checkpoints: deps.Checkpoints, Logger: deps.Logger}, nil)
	again.settle, again.every = 0, time.Hour
	if err := again.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, again); len(got) != 0 {
		t.Fatalf("after a restart: %d changes read again", len(got))
	}
	// Two changes of one object within a second tie: the object is read
	// and its state now published instead.
	f.SetClock(func() time.Time { return time.Now().Add(-time.Minute) })
	dashboard(t, f, http.MethodPost, "/v1/products/"+p["id"].(string), formOf("name", "Tie 1"))
	dashboard(t, f, http.MethodPost, "/v1/products/"+p["id"].(string), formOf("name", "Tie 2"))
	again.lastPoll = time.Time{}
	if got := drain(t, again); len(got) != 1 || got[0].Record.Fields["name"] != "Tie 2" || strings.Count(got[0].Version, ".") != 2 {
		t.Fatalf("a tie: %+v", got)
	}
	// Stripe forgot the cursor's event (older than 30 days): backfill.
	dashboard(t, f, http.MethodPost, "/v1/products", formOf("name", "Late"))
	f.DropEvents(1)
	again.lastPoll = time.Time{}
	if got := drain(t, again); len(got) != 132 {
		t.Fatalf("after the cursor was lost: %d changes, want every product (132)", len(got))
	}
}

func TestCursorGolden(t *testing.T) {
	t.Parallel()
	got := cursor{Event: "evt_1", Created: 1767225600}.encode() + "\n" +
		cursor{Fill: &backfill{Start: "evt_9", StartCreated: 1767225600, Location: 1, After: "prod_3", Rows: 250}}.encode() + "\n"
	want, err := os.ReadFile("testdata/cursor.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		_ = os.WriteFile("testdata/cursor.golden", []byte(got), 0o644)
		return
	}
	if err != nil || string(want) != got {
		t.Fatalf("cursor encoding changed (a stored cursor must still read):\n got %s\nwant %s", got, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if _, err := decodeCursor(line); err != nil {
			t.Fatal(err)
		}
	}
}
