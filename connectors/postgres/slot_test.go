package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// sourceOf builds a source named name that maps table loc of the items
// shape, keeping its checkpoints in cps.
func sourceOf(t *testing.T, url, name, loc string, cps *memCheckpoints, settings map[string]any) *Source {
	t.Helper()
	model, err := mixer.CompileModel("mem:///item.json", []byte(itemModel))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mixer.NewReceiveRule(model, []mixer.ReceiveField{{Source: mixer.MustPath("id"), Field: "id"}, {Source: mixer.MustPath("name"), Field: "name"}})
	if err != nil {
		t.Fatal(err)
	}
	recv := mixer.NewReceiver()
	recv.Add(loc, rule)
	all := map[string]any{SettingStatusInterval: 100 * time.Millisecond}
	for k, v := range settings {
		all[k] = v
	}
	src, err := NewSource(testSystem(name, url, recv, nil, all), connectors.SourceDeps{Checkpoints: cps})
	if err != nil {
		t.Fatal(err)
	}
	return src.(*Source)
}

// readUntil reads and confirms batches until cond holds.
func readUntil(t *testing.T, s *Source, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		b, err := s.Next(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("next: %v", err)
		}
		if b.Position != "" {
			if err := s.Confirm(context.Background(), b.Position); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func publicationComment(t *testing.T, conn *pgx.Conn, pub string) string {
	t.Helper()
	var c *string
	if err := conn.QueryRow(context.Background(), `SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1`, pub).Scan(&c); err != nil {
		t.Fatalf("publication %s: %v", pub, err)
	}
	if c == nil {
		return ""
	}
	return *c
}

// TestTwoSystemsOnOneDatabaseLoseNothing is the case of two systems whose
// names sanitise alike (shop-db and shop_db) on one database. Each must
// read a slot of its own: when the second read the first's slot, it
// confirmed the first's changes, which were gone when the first came back.
func TestTwoSystemsOnOneDatabaseLoseNothing(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE items_a (id bigint PRIMARY KEY, name text)`, `CREATE TABLE items_b (id bigint PRIMARY KEY, name text)`)
	base := testenv.UniqueName("shop")
	cpsA, cpsB := &memCheckpoints{}, &memCheckpoints{}
	noSnap := map[string]any{SettingInitialSnapshot: false}
	first := openSource(t, sourceOf(t, url, base+"-db", "public.items_a", cpsA, noSnap))
	first.Close(context.Background()) // an ingest restart, a lock handed over
	testenv.WaitSlotReleased(t, conn, first.slot)
	exec(t, conn, `INSERT INTO items_a SELECT g, 'first ' || g FROM generate_series(1, 6) g`)
	written := currentLSN(t, conn)

	second := sourceOf(t, url, base+"_db", "public.items_b", cpsB, nil)
	if second.slot == first.slot || second.pub == first.pub {
		t.Errorf("%s and %s share slot %s or publication %s", first.sys.Name, second.sys.Name, first.slot, first.pub)
	}
	openSource(t, second)
	exec(t, conn, `INSERT INTO items_b VALUES (1, 'second')`)
	readUntil(t, second, "the second system to confirm past the first one's inserts", func() bool {
		return confirmedLSN(t, conn, second.slot) >= written
	})
	second.Close(context.Background())

	again := openSource(t, sourceOf(t, url, base+"-db", "public.items_a", cpsA, noSnap))
	changes := collect(t, again, 6, true)
	for i, c := range changes {
		if c.Record.Location != "public.items_a" || c.Record.Fields["name"] != "first "+string(rune('1'+i)) {
			t.Fatalf("change %d of the first system: %+v", i, c.Record)
		}
	}
}

// TestSlotOfSomethingElseIsRefused: a slot that exists under the name a
// source would use, but that nothing says is the source's (made by another
// tool), is refused at start and left as it was; a mark written by hand
// hands it over.
func TestSlotOfSomethingElseIsRefused(t *testing.T) {
	t.Parallel()
	_, conn, open, _ := newSrcEnv(t)
	src := open(nil)
	exec(t, conn, `SELECT pg_create_logical_replication_slot('`+src.slot+`', 'pgoutput')`)
	before := confirmedLSN(t, conn, src.slot)
	err := src.Open(context.Background())
	if !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "this source's checkpoint does not name it and no Remix mark") {
		t.Fatalf("open with another's slot: %v", err)
	}
	if got := confirmedLSN(t, conn, src.slot); got != before {
		t.Fatalf("the slot moved from %s to %s", before, got)
	}
	var pubs int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_publication`).Scan(&pubs)
	if pubs != 0 {
		t.Fatal("a refused start created its publication")
	}

	// The administrator says it was made for this source.
	exec(t, conn, `CREATE PUBLICATION `+src.pub+` FOR TABLE items`,
		`COMMENT ON PUBLICATION `+src.pub+` IS '{"remix_source": "`+src.sys.Name+`", "slot": "`+src.slot+`"}'`,
		`INSERT INTO items (id) VALUES (1)`)
	adopted := openSource(t, open(nil))
	if c := collect(t, adopted, 1, true); c[0].Record.Fields["id"] == nil {
		t.Fatalf("first change: %+v", c[0].Record)
	}
	m := parseMark(publicationComment(t, conn, src.pub))
	if m == nil || m.Source != src.sys.Name || m.Slot != src.slot || m.Claim != adopted.claim || m.Claim == "" {
		t.Fatalf("mark after adoption: %+v (claim %q)", m, adopted.claim)
	}
}

// TestAnotherSourcesSlotIsRefused: a source whose slot_name or
// publication_name names another source's objects does not start, and
// says whose they are.
func TestAnotherSourcesSlotIsRefused(t *testing.T) {
	t.Parallel()
	url, conn, open, _ := newSrcEnv(t)
	owner := openSource(t, open(map[string]any{SettingInitialSnapshot: false}))
	owner.Close(context.Background())
	testenv.WaitSlotReleased(t, conn, owner.slot)
	for _, settings := range []map[string]any{
		{SettingSlotName: owner.slot},
		{SettingPublicationName: owner.pub},
	} {
		other := sourceOf(t, url, testenv.UniqueName("other"), "public.items", &memCheckpoints{}, settings)
		err := other.Open(context.Background())
		if !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "belongs to Remix source "+owner.sys.Name) {
			t.Fatalf("open with %v: %v", settings, err)
		}
	}
	var tables int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_publication_tables WHERE pubname = $1`, owner.pub).Scan(&tables)
	if tables != 1 {
		t.Fatalf("the owner's publication has %d tables", tables)
	}
}

// TestSameNameOtherCheckpointIsRefusedUntilReset: the same system name with
// a checkpoint that does not hold the slot's claim (another deployment, or
// a Redis that lost its data) is refused; `remix reset` then starts it over.
func TestSameNameOtherCheckpointIsRefusedUntilReset(t *testing.T) {
	t.Parallel()
	_, conn, open, cps := newSrcEnv(t)
	exec(t, conn, `INSERT INTO items (id, name) VALUES (1, 'a')`)
	first := openSource(t, open(nil))
	collect(t, first, 1, true)
	first.Close(context.Background())
	testenv.WaitSlotReleased(t, conn, first.slot)
	claim := first.claim

	cps.Save(context.Background(), checkpointName, "") // Redis lost it
	err := open(nil).Open(context.Background())
	if !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "claim "+claim) || !strings.Contains(err.Error(), "remix reset") {
		t.Fatalf("open without the claim: %v", err)
	}
	if err := Reset(context.Background(), first.sys, cps); err != nil {
		t.Fatal(err)
	}
	fresh := openSource(t, open(nil))
	if c := collect(t, fresh, 1, true); c[0].Record.Fields["name"] != "a" {
		t.Fatalf("after the reset: %+v", c[0].Record)
	}
	if fresh.claim == claim {
		t.Fatal("the reset source kept the old claim")
	}
}

// TestUpgradeKeepsTheSlot: a deployment of an earlier version has a slot
// and a publication without marks, and a checkpoint without a claim. The
// source keeps reading them (no copy) and marks them; a system whose name
// is not an identifier keeps the slot named the old way, until a reset.
func TestUpgradeKeepsTheSlot(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, name text)`, `INSERT INTO items VALUES (1, 'copied before')`)
	name := testenv.UniqueName("shop") + "-db"
	old := legacyName(name)
	if old == DefaultName(name) {
		t.Fatal("the test needs a name whose slot name changed")
	}
	exec(t, conn, `CREATE PUBLICATION `+old+` FOR TABLE items`, `SELECT pg_create_logical_replication_slot('`+old+`', 'pgoutput')`)
	cps := &memCheckpoints{}
	cps.Save(context.Background(), checkpointName, `{"slot":"`+old+`","snapshot":"done"}`)
	exec(t, conn, `INSERT INTO items VALUES (2, 'while upgrading')`)

	src := openSource(t, sourceOf(t, url, name, "public.items", cps, nil))
	if src.slot != old || src.pub != old {
		t.Fatalf("upgraded source reads %s / %s, want the old %s", src.slot, src.pub, old)
	}
	if c := collect(t, src, 1, true); c[0].Record.Fields["name"] != "while upgrading" {
		t.Fatalf("first change after the upgrade (no copy expected): %+v", c[0].Record)
	}
	m := parseMark(publicationComment(t, conn, old))
	if m == nil || m.Source != name || m.Slot != old || m.Claim == "" {
		t.Fatalf("mark after the upgrade: %+v", m)
	}
	var st state
	v, _, _ := cps.Load(context.Background(), checkpointName)
	if err := json.Unmarshal([]byte(v), &st); err != nil || st.Claim != m.Claim {
		t.Fatalf("checkpoint %s, mark claim %s", v, m.Claim)
	}
	src.Close(context.Background())
	testenv.WaitSlotReleased(t, conn, old)

	// A reset moves the source to its own new names.
	if err := Reset(context.Background(), src.sys, cps); err != nil {
		t.Fatal(err)
	}
	var n int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, old).Scan(&n)
	if n != 0 {
		t.Fatal("the reset left the old slot")
	}
	moved := openSource(t, sourceOf(t, url, name, "public.items", cps, nil))
	if moved.slot != DefaultName(name) {
		t.Fatalf("after the reset the source reads %s", moved.slot)
	}
	if c := collect(t, moved, 2, true); len(c) != 2 {
		t.Fatalf("copy after the reset: %d rows", len(c))
	}
}

// TestResetLeavesAnotherSourcesSlot: when two sources of an earlier version
// shared a slot, the one refused at start can be reset without taking the
// slot from the other.
func TestResetLeavesAnotherSourcesSlot(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, name text)`)
	base := testenv.UniqueName("shop")
	legacy := legacyName(base + "-db") // also shop_db's name, today and before
	if legacy != DefaultName(base+"_db") {
		t.Fatalf("%s is not shop_db's slot", legacy)
	}
	exec(t, conn, `CREATE PUBLICATION `+legacy+` FOR TABLE items`, `SELECT pg_create_logical_replication_slot('`+legacy+`', 'pgoutput')`)
	cpsUnderscore, cpsDash := &memCheckpoints{}, &memCheckpoints{}
	for _, c := range []*memCheckpoints{cpsUnderscore, cpsDash} {
		c.Save(context.Background(), checkpointName, `{"slot":"`+legacy+`","snapshot":"done"}`)
	}
	owner := openSource(t, sourceOf(t, url, base+"_db", "public.items", cpsUnderscore, nil))
	if owner.slot != legacy {
		t.Fatalf("shop_db reads %s, want %s", owner.slot, legacy)
	}
	dash := sourceOf(t, url, base+"-db", "public.items", cpsDash, nil)
	err := dash.Open(context.Background())
	if !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "remix reset "+base+"-db") {
		t.Fatalf("open of the second sharer: %v", err)
	}
	if err := Reset(context.Background(), dash.sys, cpsDash); err != nil {
		t.Fatal(err)
	}
	var active bool
	if err := conn.QueryRow(context.Background(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, legacy).Scan(&active); err != nil || !active {
		t.Fatalf("the owner's slot after the other's reset: active %v, %v", active, err)
	}
	moved := openSource(t, sourceOf(t, url, base+"-db", "public.items", cpsDash, map[string]any{SettingInitialSnapshot: false}))
	if moved.slot == legacy || moved.pub == legacy {
		t.Fatalf("the reset source still uses %s/%s", moved.slot, moved.pub)
	}
	exec(t, conn, `INSERT INTO items VALUES (1, 'both')`)
	for _, s := range []*Source{owner, moved} {
		if c := collect(t, s, 1, true); c[0].Record.Fields["name"] != "both" {
			t.Fatalf("%s: %+v", s.sys.Name, c[0].Record)
		}
	}
}
