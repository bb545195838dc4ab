package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
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

// TestProcsRiseAndFallInAProcess runs the controller in a process of its
// own (this test binary again): busy on every P it has, the process must
// get the runtime's default within a few samples; idle again, one P.
func TestProcsRiseAndFallInAProcess(t *testing.T) {
	if os.Getenv("REMIX_PROCS_HELPER") == "1" {
		procsHelper(t) // in the child
		return
	}
	t.Parallel()
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: the default is one P, and the controller never starts")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcsRiseAndFallInAProcess$")
	cmd.Env = append(os.Environ(), "REMIX_PROCS_HELPER=1")
	cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, want := range []string{"started on 1", "busy: rose to ", "idle: back to 1"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("helper output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("helper: %s", out)
}

// procsHelper is TestProcsRiseAndFallInAProcess in its child process.
func procsHelper(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	followLoad(ctx, os.Getenv)
	fmt.Printf("started on %d\n", runtime.GOMAXPROCS(0))
	wait := func(what string, ok func(int) bool) int {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if n := runtime.GOMAXPROCS(0); ok(n) {
				return n
			}
			time.Sleep(50 * time.Millisecond) // polling the runtime's setting: nothing signals it
		}
		t.Fatalf("%s: GOMAXPROCS still %d after 10s", what, runtime.GOMAXPROCS(0))
		return 0
	}
	stop := make(chan struct{})
	for i := 0; i < runtime.NumCPU(); i++ {
		go func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if n%1_000_000 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	fmt.Printf("busy: rose to %d\n", wait("busy", func(n int) bool { return n > 1 }))
	close(stop)
	fmt.Printf("idle: back to %d\n", wait("idle", func(n int) bool { return n == 1 }))
}
