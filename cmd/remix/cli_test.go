package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/app"
)

// TestMain lets the test binary stand in for remix: with
// REMIX_TEST_AS_REMIX=1 it runs main, so a test can signal a real process.
func TestMain(m *testing.M) {
	if os.Getenv("REMIX_TEST_AS_REMIX") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestHelpPerCommand: `remix help CMD` and `remix CMD --help` print the
// command's usage and only its own flags to stdout, and exit 0.
func TestHelpPerCommand(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cmd        string
		has, lacks []string
	}{
		{"validate", []string{"-online", "-strict", "-format", "-systems", "-redis"}, []string{"-limit", "-all", "-lease-ttl", "-http-addr"}},
		{"check", []string{"-online", "-redis"}, []string{"-limit"}},
		{"status", []string{"-watch", "-interval", "-format", "-redis", "-namespace"}, []string{"-all", "-lease-ttl", "-apply"}},
		{"run", []string{"-http-addr", "-lease-ttl", "-accept-redis-data-loss", "-version"}, []string{"-limit", "-system "}},
		{"dlq list", []string{"-system", "-limit", "-json", "-namespace"}, []string{"-all", "-id", "-apply", "-lease-ttl"}},
		{"dlq show", []string{"-system"}, []string{"-all", "-limit"}},
		{"dlq replay", []string{"-id", "-wait"}, []string{"-all", "-limit", "-apply"}},
		{"dlq drop", []string{"-id", "-all"}, []string{"-limit", "-json", "-apply"}},
		{"reset", []string{"-lock-ttl"}, []string{"-all", "-limit", "-apply"}},
		{"reconcile", []string{"-apply", "-wait", "-sample"}, []string{"-all", "-limit", "-json"}},
	}
	for _, c := range cases {
		words := strings.Fields(c.cmd)
		for _, args := range [][]string{append([]string{"help"}, words...), append(append([]string(nil), words...), "--help"), append(append([]string(nil), words...), "-h")} {
			code, out, errOut := runRemix(t, args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "usage: remix "+c.cmd) {
				t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
			}
			for _, f := range c.has {
				if !strings.Contains(out, "\n  "+f) {
					t.Errorf("%v lacks flag %s:\n%s", args, f, out)
				}
			}
			for _, f := range c.lacks {
				if strings.Contains(out, "\n  "+f) {
					t.Errorf("%v lists flag %s, which is not its own:\n%s", args, f, out)
				}
			}
		}
	}
	// Every flag shared by the commands names its environment variable.
	_, out, _ := runRemix(t, "help", "status")
	for _, env := range []string{"SYSTEMS_DIR", "MODELS_DIR", "REDIS_URL", "REMIX_NAMESPACE", "REMIX_PARTITIONS"} {
		if !strings.Contains(out, "(env "+env) {
			t.Errorf("status help does not name %s:\n%s", env, out)
		}
	}
}

func TestTopLevelHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		if code, out, _ := runRemix(t, args...); code != 0 || !strings.HasPrefix(out, "usage: remix <command>") {
			t.Fatalf("%v: exit %d:\n%s", args, code, out)
		}
	}
	// The dead-letter commands have a usage of their own: each, with what it does.
	for _, args := range [][]string{{"dlq", "--help"}, {"help", "dlq"}} {
		code, out, _ := runRemix(t, args...)
		if code != 0 || !strings.HasPrefix(out, "usage: remix dlq <list|show|replay|drop>") {
			t.Fatalf("%v: exit %d:\n%s", args, code, out)
		}
		for _, c := range []string{"list", "show", "replay", "drop"} {
			if !strings.Contains(out, "\nremix dlq "+c+" ") || !strings.Contains(out, opUsages["dlq "+c].Summary[:30]) {
				t.Errorf("%v does not describe dlq %s:\n%s", args, c, out)
			}
		}
	}
	for _, args := range [][]string{{}, {"nope"}, {"help", "nope"}, {"dlq"}, {"dlq", "nope"}} {
		if code, _, errOut := runRemix(t, args...); code != 2 || errOut == "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	// Every command the binary runs is in the list, and every listed one runs.
	_, out, _ := runRemix(t, "help")
	for _, cmd := range []string{"validate", "status", "datasets", "run", "dlq list", "dlq show", "dlq replay", "dlq drop", "reset", "reconcile", "healthcheck", "help", "version"} {
		if !strings.Contains(out, "\n  "+cmd+" ") {
			t.Errorf("remix help does not list %q:\n%s", cmd, out)
		}
	}
	// A bad flag: exit 2 with the command's usage on stderr.
	if code, out, errOut := runRemix(t, "dlq", "list", "--all"); code != 2 || out != "" || !strings.Contains(errOut, "usage: remix dlq list") {
		t.Fatalf("bad flag: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"version"}, {"run", "--version"}} {
		if code, out, _ := runRemix(t, args...); code != 0 || !strings.HasPrefix(out, "remix") || !strings.Contains(out, "go1.") {
			t.Fatalf("%v: exit %d: %q", args, code, out)
		}
	}
	for _, name := range []string{"ingest", "pusher"} {
		var out, errOut bytes.Buffer
		code := app.Main(context.Background(), name, name == "ingest", name == "pusher", []string{"--version"}, &out, &errOut)
		if code != 0 || !strings.HasPrefix(out.String(), name+" ") {
			t.Fatalf("%s --version: exit %d: %q %q", name, code, out.String(), errOut.String())
		}
		out.Reset()
		code = app.Main(context.Background(), name, name == "ingest", name == "pusher", []string{"--help"}, &out, &errOut)
		if code != 0 || !strings.HasPrefix(out.String(), "usage: "+name) || !strings.Contains(out.String(), "env REMIX_SYSTEMS") {
			t.Fatalf("%s --help: exit %d:\n%s", name, code, out.String())
		}
	}
}

// TestPlurals: one problem is "1 problem"; one system "1 system".
func TestPlurals(t *testing.T) {
	t.Parallel()
	bad := filepath.Join("..", "..", "config", "testdata", "bad", "01-unknown-key")
	models := filepath.Join("..", "..", "config", "testdata", "models")
	if code, _, errOut := runRemix(t, "validate", "--systems", bad, "--models", models); code != 1 || errOut != "1 problem\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	env := filepath.Join("..", "..", "config", "testdata", "bad", "03-missing-env")
	if code, _, errOut := runRemix(t, "validate", "--systems", env, "--models", models); code != 0 || !strings.Contains(errOut, "1 system, 2 models") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestValidateUnsetVariable: offline, an unset ${VAR} is a warning with
// its place (exit 0); --strict makes it the error it is at run time.
func TestValidateUnsetVariable(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "config", "testdata", "bad", "03-missing-env")
	models := filepath.Join("..", "..", "config", "testdata", "models")
	want := filepath.Join(dir, "db.yaml") + ":3:8: warning: db.dsn: environment variable APP_DB_DSN is not set (an error when Remix runs); the value is not checked\n"
	code, out, _ := runRemix(t, "validate", "--systems", dir, "--models", models)
	if code != 0 || out != want {
		t.Fatalf("exit %d\n%s\nwant\n%s", code, out, want)
	}
	code, out, errOut := runRemix(t, "validate", "--strict", "--systems", dir, "--models", models)
	if code != 1 || !strings.Contains(out, "db.yaml:3:8: db.dsn: environment variable APP_DB_DSN is not set\n") || errOut != "1 problem\n" {
		t.Fatalf("--strict: exit %d\n%s%s", code, out, errOut)
	}
}

// TestMissingFolders: without --systems and --models the error says how
// to name them.
func TestMissingFolders(t *testing.T) {
	t.Parallel()
	code, _, errOut := runRemix(t, "validate", "--systems", "", "--models", "")
	if code != 1 || !strings.Contains(errOut, "name it with --systems (or SYSTEMS_DIR) and --models (or MODELS_DIR)") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestInterruptThenTerminateStopsCleanly sends SIGINT, then SIGTERM 100 ms
// later, to a real `remix run` (a terminal's Ctrl-C and a script's TERM):
// one clean stop, exit 0, "stopped" logged, no forced exit.
func TestInterruptThenTerminateStopsCleanly(t *testing.T) {
	t.Parallel()
	example := filepath.Join("..", "..", "examples", "postgresql_to_postgresql")
	closed := closedAddr(t)
	cmd := exec.Command(os.Args[0], "run", "--http-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "REMIX_TEST_AS_REMIX=1",
		"SYSTEMS_DIR="+filepath.Join(example, "systems"), "MODELS_DIR="+filepath.Join(example, "models"),
		"SHOP_DSN=postgres://u@"+closed+"/shop", "WAREHOUSE_DSN=postgres://u@"+closed+"/warehouse",
		"REDIS_URL=redis://"+closed+"/0")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "cannot reach Redis") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("remix run did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(100 * time.Millisecond) // the gap under test, not a wait for a condition
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("did not stop:\n%s", stderr.String())
	}
	if s := stderr.String(); !strings.Contains(s, "msg=stopped") || strings.Contains(s, "second signal") {
		t.Fatalf("stderr:\n%s", s)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// syncBuffer is a bytes.Buffer a process writes while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
