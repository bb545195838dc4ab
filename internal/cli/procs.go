package cli

import (
	"context"
	"runtime"
	"time"
)

// Threads that follow the load.
//
// At a trickle, a pipeline process hands every change from goroutine to
// goroutine and waits on the network in between. With more than one P
// each hand-over wakes an idle thread to look for work, which finds none
// and sleeps again (futex, nanosleep, epoll_wait): at 1 000 single-row
// transactions a second on two cores, the ingest used 93–94 µs of CPU per
// row with GOMAXPROCS=1 against 114–123, the pusher 118–122 against
// 161–174, with the same latency, while catch-up and the snapshot ran as
// fast on one P (docs/performance.md). A busy process can use more than
// one core, though, so one P cannot be the setting for good. Unless
// GOMAXPROCS is set, a process starts on one P, and every procsEvery it
// looks at the CPU time it used (getrusage): near a whole core, it goes
// back to the runtime's default (the CPUs it may use, or its container's
// quota, kept up to date by the runtime); with the default and little use,
// to one P again. The Go runtime has no such setting of its own.

const (
	procsEvery = 500 * time.Millisecond
	// procsUp is the share of a core, used on one P, from which the
	// process gets the default back; procsDown the share under which it
	// goes back to one. The gap keeps a process near either from flapping.
	procsUp   = 0.8
	procsDown = 0.4
)

// procs decides how many Ps a process runs on from the CPU time it uses.
type procs struct {
	one        bool          // on one P
	last       time.Duration // CPU time at the last sample
	at         time.Time     // when it was taken
	setOne     func()
	setDefault func()
}

// sample takes the CPU time used so far at now and changes the Ps when the
// use since the last sample says so; it reports whether it changed them.
func (p *procs) sample(cpu time.Duration, now time.Time) bool {
	wall := now.Sub(p.at)
	used := cpu - p.last
	p.last, p.at = cpu, now
	if wall <= 0 {
		return false
	}
	share := float64(used) / float64(wall)
	switch {
	case p.one && share >= procsUp:
		p.one = false
		p.setDefault()
		return true
	case !p.one && share <= procsDown:
		p.one = true
		p.setOne()
		return true
	}
	return false
}

// followLoad runs the controller until ctx ends, when GOMAXPROCS is not
// set, the runtime would use more than one P and the process's CPU time
// can be read.
func followLoad(ctx context.Context, env func(string) string) {
	if env("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) < 2 {
		return
	}
	cpu, ok := cpuTime()
	if !ok {
		return
	}
	p := &procs{one: true, last: cpu, at: time.Now(),
		setOne: func() { runtime.GOMAXPROCS(1) }, setDefault: runtime.SetDefaultGOMAXPROCS}
	runtime.GOMAXPROCS(1)
	go func() {
		t := time.NewTicker(procsEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if cpu, ok := cpuTime(); ok {
					p.sample(cpu, now)
				}
			}
		}
	}()
}
