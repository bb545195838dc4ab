package app

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestStatusFitsAScreen: a status with long names and ids still reads in
// 100 columns, and says what to look at.
func TestStatusFitsAScreen(t *testing.T) {
	t.Parallel()
	rate := 12.5
	retained := uint64(1023 << 20)
	long := "ip-10-0-12-34.eu-west-1.compute.internal-123456-abc12"
	v := StatusView{
		Time:  time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC),
		Redis: "the Redis at redis.internal:6379 db 0, namespace remix",
		Members: []MemberView{
			{ID: long, Kind: "ingest", Sources: map[string]string{"shop": "leader (streaming)", "billing-postgres-primary": "standby"}},
			{ID: long + "x", Kind: "pusher", Partitions: map[string]int{"warehouse": 11, "a-target-with-a-very-long-name": 3}},
		},
		Sources: []SourceView{
			{Name: "shop", Holder: long, LockToken: 12, State: "streaming", ReadPosition: "1A/C6C02C0A", ConfirmedPosition: "1A/C6C02000", Unconfirmed: 3082, Retained: &retained},
			{Name: "billing-postgres-primary-eu-west", LockToken: 3, State: "snapshot", Snapshotting: true, SnapshotRows: 50000, SnapshotEstimate: 200000},
			{Name: "orders", State: "unread"},
		},
		Targets: []TargetView{{Name: "warehouse", Pushers: []string{long}, Models: []ModelView{
			{Model: "customer", Partitions: 16, Backlog: 1234, OldestAgeSeconds: 75.2, AppliedPerSecond: &rate, Owners: map[string]int{"a": 6, "b": 5, "c": 4}, Unowned: 1},
			{Model: "an_order_line_item_with_a_long_name", Partitions: 16, Owners: map[string]int{}},
		}}},
		DeadLetters: []DeadLetterView{{System: "shop", Entries: 2, Bytes: 4096, Limit: "100000 entries or 256.0 MiB", WhenFull: "pause"}},
	}
	var b strings.Builder
	renderStatus(&b, v)
	out := b.String()
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("%d columns: %q", n, line)
		}
	}
	for _, want := range []string{"shop: leader (streaming)", "warehouse: 11 partitions", "#12", "3.0 KiB", "1023.0 MiB", "snapshot 25%", "copying the tables: 50000 of about 200000 rows",
		"1234", "1m15s", "12.5", "3 pushers: 6+5+4, 1 unowned", "source orders is unread", "warehouse/customer: 1 partition held by no pusher", "warehouse: 11 partitions",
		"shop holds 2 dead letters"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("\n%s", out)
	}
}
