package testenv

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child process a test can signal (SIGKILL, SIGSTOP, SIGCONT)
// and whose stdout lines it can wait for.
type Process struct {
	t     testing.TB
	Name  string
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	mu    sync.Mutex
	out   []string
	err   strings.Builder
}

// StartHelper runs this test binary again in a helper role: TestMain sees
// REMIX_TEST_HELPER=role and runs the helper instead of the tests.
func StartHelper(t testing.TB, name, role string, env ...string) *Process {
	t.Helper()
	return StartProcess(t, name, append([]string{"REMIX_TEST_HELPER=" + role}, env...), os.Args[0], "-test.run=^$")
}

// StartProcess starts a command with extra environment variables. It is
// killed at the end of the test.
func StartProcess(t testing.TB, name string, env []string, path string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, Name: name, lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{p: p}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s stderr (tail):\n%s", name, tail(p.Stderr(), 3000))
		}
	})
	return p
}

type lockedWriter struct{ p *Process }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.err.Len() < 1<<20 {
		w.p.err.Write(b)
	}
	return len(b), nil
}

var _ io.Writer = (*lockedWriter)(nil)

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig; it does nothing once the process has ended.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stderr returns what the process wrote to stderr so far.
func (p *Process) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.String()
}

// WaitLine waits for a stdout line starting with prefix, seen before or
// after the call, and returns it.
func (p *Process) WaitLine(prefix string, within time.Duration) string {
	p.t.Helper()
	deadline := time.After(within)
	for {
		p.mu.Lock()
		for _, l := range p.out {
			if strings.HasPrefix(l, prefix) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.lines:
		case <-p.done:
			p.mu.Lock()
			for _, l := range p.out {
				if strings.HasPrefix(l, prefix) {
					p.mu.Unlock()
					return l
				}
			}
			p.mu.Unlock()
			p.t.Fatalf("%s ended before printing %q; stderr:\n%s", p.Name, prefix, tail(p.Stderr(), 3000))
		case <-deadline:
			p.t.Fatalf("%s did not print %q within %v; stderr:\n%s", p.Name, prefix, within, tail(p.Stderr(), 3000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Output returns every stdout line so far.
func (p *Process) Output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.out...)
}

// WaitStderr waits until the process has written substr to stderr.
func (p *Process) WaitStderr(substr string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Stderr(), substr) {
		select {
		case <-p.done:
			p.t.Fatalf("%s ended before writing %q; stderr:\n%s", p.Name, substr, tail(p.Stderr(), 3000))
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not write %q within %v; stderr:\n%s", p.Name, substr, within, tail(p.Stderr(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
