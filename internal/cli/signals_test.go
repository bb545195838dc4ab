package cli

import (
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestSignalsWithinASecondAreOneStop(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	sigs := make(chan os.Signal)
	cancelled, exited := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchSignals(sigs, func() { close(cancelled) }, func() { close(exited) }, clock.Now)
	}()
	sigs <- os.Interrupt // the terminal's Ctrl-C
	<-cancelled
	clock.add(100 * time.Millisecond)
	sigs <- syscall.SIGTERM // the script's, right after: the same request
	clock.add(800 * time.Millisecond)
	sigs <- syscall.SIGTERM
	select {
	case <-exited:
		t.Fatal("a signal within a second of the first made the process exit at once")
	default:
	}
	clock.add(200 * time.Millisecond) // 1.1s after the first
	select {
	case sigs <- syscall.SIGINT: // a second request: exit now
	case <-exited:
		t.Fatal("a signal within a second of the first made the process exit at once")
	}
	<-exited
	<-done
}

func TestSignalsClosed(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal)
	close(sigs)
	watchSignals(sigs, func() { t.Error("cancelled without a signal") }, func() { t.Error("exited without a signal") }, time.Now)
}
