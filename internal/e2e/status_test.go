package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/app"
	"github.com/sqlpipe/remix/internal/testenv"
)

// status runs `remix status --format json`, without the systems' DSNs
// (it needs Redis alone), and decodes what it prints.
func (f *fleet) status() app.StatusView {
	f.t.Helper()
	cmd := exec.Command(filepath.Join(f.bin, "remix"), "status", "--format", "json")
	cmd.Env = withoutSecrets(append(os.Environ(), f.env...))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		f.t.Fatalf("remix status: %v\n%s", err, stderr.String())
	}
	var v app.StatusView
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		f.t.Fatalf("remix status --format json: %v\n%s", err, stdout.String())
	}
	return v
}

// model finds a target's model in a status view.
func model(v app.StatusView, target, name string) app.ModelView {
	for _, t := range v.Targets {
		for _, m := range t.Models {
			if t.Name == target && m.Model == name {
				return m
			}
		}
	}
	return app.ModelView{}
}

// metric reads one sample of a metric from a /metrics page: the line of
// name whose labels include every one given.
func metric(page, name string, labels ...string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if ok {
			v, err := strconv.ParseFloat(m[2], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// hasPid reports whether a member id (host-pid-suffix) is the process's.
func hasPid(id string, p *testenv.Process) bool {
	return strings.Contains(id, "-"+strconv.Itoa(p.Pid())+"-")
}

// TestStatusAndBacklogOfAFleet runs two ingests and three pushers and
// checks what `remix status --format json` and /metrics say against what
// was replicated: who leads and who stands by, the partitions of every
// pusher, positions, no backlog once converged; a backlog that grows and
// ages while every pusher of the target is stopped (SIGSTOP) and drains
// after SIGCONT; the backlog metrics while the target is blocked. At the
// end every process gets SIGINT and, 100 ms later, SIGTERM, and stops
// cleanly.
func TestStatusAndBacklogOfAFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{})
	f.env = append(f.env, "REMIX_ENTRY_COMPRESSION=s2") // the default, whatever the shell running the tests says
	ingests := []*testenv.Process{f.ingest("ingest-1"), f.ingest("ingest-2")}
	pushers := []*testenv.Process{f.pusher("pusher-1"), f.pusher("pusher-2"), f.pusher("pusher-3")}
	var leader, standby *testenv.Process
	waitFor(t, "an ingest to stream", 30*time.Second, func() bool {
		for i, p := range ingests {
			if strings.Contains(p.Stderr(), "streaming changes") {
				leader, standby = p, ingests[1-i]
				return true
			}
		}
		return false
	})
	f.exec(f.src, `INSERT INTO customers (full_name, email) SELECT 'Customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 300) g`)
	f.exec(f.src, `INSERT INTO orders (customer_id, total, status) SELECT 1 + g % 300, g, 'new' FROM generate_series(1, 500) g`)
	f.waitConverged(60 * time.Second)

	var v app.StatusView
	var seen string // what status showed last, said if it never shows the fleet
	defer func() {
		if t.Failed() && seen != "" {
			t.Logf("status showed last: %s", seen)
		}
	}()
	waitFor(t, "status to show the whole fleet", 30*time.Second, func() bool {
		v = f.status()
		kinds := map[string]int{}
		for _, m := range v.Members {
			kinds[m.Kind]++
		}
		c, o := model(v, "warehouse", "customer"), model(v, "warehouse", "order")
		var states []string
		for _, src := range v.Sources {
			states = append(states, src.State)
		}
		seen = fmt.Sprintf("members %v; customer owners %d, unowned %d; order owners %d, unowned %d; source states %v",
			kinds, len(c.Owners), c.Unowned, len(o.Owners), o.Unowned, states)
		return kinds["ingest"] == 2 && kinds["pusher"] == 3 && len(c.Owners) == 3 && len(o.Owners) == 3 &&
			c.Unowned == 0 && o.Unowned == 0 && len(v.Sources) == 1 && v.Sources[0].State == "streaming"
	})
	for _, m := range v.Members {
		switch {
		case m.Kind == "ingest" && hasPid(m.ID, leader):
			if m.Sources["shop"] != "leader (streaming)" {
				t.Errorf("leading ingest %s: %v", m.ID, m.Sources)
			}
		case m.Kind == "ingest" && hasPid(m.ID, standby):
			if m.Sources["shop"] != "standby" {
				t.Errorf("standby ingest %s: %v", m.ID, m.Sources)
			}
		case m.Kind == "pusher":
			if m.Partitions["warehouse"] < 1 {
				t.Errorf("pusher %s holds no partition: %v", m.ID, m.Partitions)
			}
		default:
			t.Errorf("member %s is none of the fleet's processes", m.ID)
		}
	}
	for _, name := range []string{"customer", "order"} {
		m := model(v, "warehouse", name)
		held := 0
		for id, n := range m.Owners {
			held += n
			mine := false
			for _, p := range pushers {
				mine = mine || hasPid(id, p)
			}
			if !mine {
				t.Errorf("%s: partitions held by %s, which is no pusher of the fleet", name, id)
			}
		}
		if m.Partitions != 8 || held != 8 || m.Backlog != 0 || m.OldestAgeSeconds != 0 {
			t.Errorf("%s after converging: %+v", name, m)
		}
	}
	src := v.Sources[0]
	if !hasPid(src.Holder, leader) || src.LockToken == 0 || src.ReadPosition == "" || src.ConfirmedPosition == "" || src.Retained == nil {
		t.Errorf("source: %+v", src)
	}
	for _, d := range v.DeadLetters {
		if d.Entries != 0 {
			t.Errorf("dead letters: %+v", d)
		}
	}

	// The metrics agree with what was replicated.
	_, page := get(t, "http://"+httpAddr(t, leader)+"/metrics")
	if _, ok := metric(page, "remix_source_retained_bytes", `system="shop"`); !ok {
		t.Error("the leading ingest exports no remix_source_retained_bytes")
	}
	entryBytes, _ := metric(page, "remix_ingest_entry_bytes_total", `system="shop"`)
	stored, _ := metric(page, "remix_ingest_entry_stored_bytes_total", `system="shop"`)
	// Hundreds of rows published together: entries large enough to be
	// compressed (the default), and shrunk by it.
	if entryBytes <= 0 || stored <= 0 || stored*2 > entryBytes {
		t.Errorf("entry bytes published %v, stored %v: want both above zero, stored half or less", entryBytes, stored)
	}
	for name, want := range map[string]float64{"customer": 300, "order": 500} {
		if got, _ := metric(page, "remix_ingest_objects_published_total", `model="`+name+`"`); got != want {
			t.Errorf("ingest published %v %s objects, want %v", got, name, want)
		}
		var pushed float64
		waitFor(t, "the pushers' backlog metrics", 30*time.Second, func() bool {
			pushed = 0
			zero := true
			for _, p := range pushers {
				_, page := get(t, "http://"+httpAddr(t, p)+"/metrics")
				n, _ := metric(page, "remix_pusher_entries_total", `model="`+name+`"`)
				pushed += n
				b, ok := metric(page, "remix_target_backlog_entries", `model="`+name+`"`, `target="warehouse"`)
				zero = zero && ok && b == 0
			}
			return zero
		})
		if pushed < want {
			t.Errorf("pushers applied %v %s objects, want at least %v", pushed, name, want)
		}
	}

	// Every pusher of the target stopped: the backlog grows and ages.
	for _, p := range pushers {
		p.Signal(syscall.SIGSTOP)
	}
	f.exec(f.src, `INSERT INTO customers (full_name) SELECT 'Later ' || g FROM generate_series(1, 50) g`)
	var first app.ModelView
	waitFor(t, "a backlog while the pushers are stopped", 30*time.Second, func() bool {
		first = model(f.status(), "warehouse", "customer")
		return first.Backlog > 0 && first.OldestAgeSeconds > 0
	})
	waitFor(t, "the backlog to age", 30*time.Second, func() bool {
		m := model(f.status(), "warehouse", "customer")
		if m.Backlog < first.Backlog {
			t.Fatalf("the backlog shrank while every pusher was stopped: %+v, then %+v", first, m)
		}
		if m.AppliedPerSecond == nil || *m.AppliedPerSecond != 0 {
			t.Fatalf("entries applied while every pusher was stopped: %+v", m)
		}
		return m.OldestAgeSeconds > first.OldestAgeSeconds+1
	})
	for _, p := range pushers {
		p.Signal(syscall.SIGCONT)
	}
	waitFor(t, "the backlog to drain", 60*time.Second, func() bool {
		v := f.status()
		return model(v, "warehouse", "customer").Backlog == 0 && model(v, "warehouse", "order").Backlog == 0
	})
	f.waitConverged(30 * time.Second)

	// A blocked target: the pushers run, and their metrics show the backlog.
	tx, err := f.dst.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(f.ctx, `LOCK TABLE dim_customer IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	f.exec(f.src, `UPDATE customers SET email = NULL WHERE id <= 20`)
	backlogMetric := func(want func(entries, age float64) bool) func() bool {
		return func() bool {
			for _, p := range pushers {
				_, page := get(t, "http://"+httpAddr(t, p)+"/metrics")
				n, ok1 := metric(page, "remix_target_backlog_entries", `model="customer"`, `target="warehouse"`)
				a, ok2 := metric(page, "remix_target_backlog_age_seconds", `model="customer"`, `target="warehouse"`)
				if !ok1 || !ok2 || !want(n, a) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "every pusher to report the backlog of the blocked target", 30*time.Second,
		backlogMetric(func(n, a float64) bool { return n > 0 && a > 0 }))
	if err := tx.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every pusher to report no backlog", 30*time.Second,
		backlogMetric(func(n, a float64) bool { return n == 0 && a == 0 }))
	f.waitConverged(30 * time.Second)

	// Ctrl-C from a terminal and a script's TERM right after: one clean stop.
	all := append(append([]*testenv.Process(nil), ingests...), pushers...)
	for _, p := range all {
		p.Signal(syscall.SIGINT)
	}
	time.Sleep(100 * time.Millisecond) // the gap under test
	for _, p := range all {
		p.Signal(syscall.SIGTERM)
	}
	for _, p := range all {
		select {
		case <-p.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop", p.Name)
		}
		if s := p.Stderr(); !strings.Contains(s, "msg=stopped") || strings.Contains(s, "second signal") {
			t.Errorf("%s did not stop cleanly:\n%s", p.Name, s[max(0, len(s)-2000):])
		}
		if code := p.ExitCode(); code != 0 {
			t.Errorf("%s exited with %d", p.Name, code)
		}
	}
}
