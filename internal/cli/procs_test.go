package cli

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestProcsFollowTheLoad: one P while the process uses less than most of
// a core, the default once it uses more, and one P again only when its use
// falls well under a core: between the two bounds nothing changes.
func TestProcsFollowTheLoad(t *testing.T) {
	t.Parallel()
	var calls []string
	p := &procs{one: true, at: time.Unix(0, 0),
		setOne: func() { calls = append(calls, "one") }, setDefault: func() { calls = append(calls, "default") }}
	cpu, now := time.Duration(0), time.Unix(0, 0)
	step := func(share float64) bool {
		now = now.Add(time.Second)
		cpu += time.Duration(share * float64(time.Second))
		return p.sample(cpu, now)
	}
	for i, c := range []struct {
		share   float64
		changed bool
		one     bool
	}{
		{0.1, false, true},  // a trickle: stays on one P
		{0.7, false, true},  // under procsUp
		{0.95, true, false}, // most of a core: the default
		{1.6, false, false}, // busy on both cores
		{0.6, false, false}, // between the bounds: stays
		{0.3, true, true},   // little: one P again
		{0.5, false, true},
	} {
		if got := step(c.share); got != c.changed || p.one != c.one {
			t.Fatalf("step %d (%.2f of a core): changed %v, one %v; want %v, %v", i, c.share, got, p.one, c.changed, c.one)
		}
	}
	if want := []string{"default", "one"}; len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	if p.sample(cpu, now) { // no time passed: no decision
		t.Fatal("a sample with no time since the last changed the Ps")
	}
}

// TestProcsLeftAloneWhenSet: a GOMAXPROCS the operator set is kept.
func TestProcsLeftAloneWhenSet(t *testing.T) {
	t.Parallel()
	before := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followLoad(ctx, func(k string) string {
		if k == "GOMAXPROCS" {
			return "3"
		}
		return ""
	})
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS %d after followLoad with GOMAXPROCS set, was %d", got, before)
	}
}
