package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/testenv"
)

// TestStartsWhileRedisIsDown: an ingest and a pusher started while their
// Redis is down do not exit: they serve /healthz 200 and /readyz 503 with
// the reason, keep trying, and become ready once Redis is up; then changes
// flow.
func TestStartsWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t, true)
	rs.Kill()
	f := newFleet(t, fleetOptions{env: []string{"REDIS_URL=" + rs.URL()}})
	procs := []*testenv.Process{f.ingest("ingest"), f.pusher("pusher")}
	addrs := make([]string, len(procs))
	for i, p := range procs {
		addrs[i] = httpAddr(t, p)
		waitFor(t, p.Name+" to report Redis down", 30*time.Second, func() bool {
			code, body := get(t, "http://"+addrs[i]+"/readyz")
			return code == 503 && strings.Contains(body, "redis: connecting to Redis at "+rs.Addr())
		})
		if code, _ := get(t, "http://"+addrs[i]+"/healthz"); code != 200 {
			t.Fatalf("%s: healthz %d while waiting for Redis", p.Name, code)
		}
		p.WaitStderr("cannot reach Redis; trying again", 10*time.Second)
	}
	rs.Start()
	for i, p := range procs {
		waitFor(t, p.Name+" to become ready", 60*time.Second, func() bool {
			code, _ := get(t, "http://"+addrs[i]+"/readyz")
			return code == 200
		})
	}
	f.exec(f.src, `INSERT INTO customers (full_name) VALUES ('after Redis came up')`)
	f.waitConverged(30 * time.Second)
}

// TestSourceErrorSaysSource: a source whose replication connection fails
// is reported as "source unavailable", not as a target's trouble.
func TestSourceErrorSaysSource(t *testing.T) {
	t.Parallel()
	systems := t.TempDir()
	shop := strings.Replace(readFile(t, filepath.Join(example, "systems", "shop.yaml")),
		"  dsn: ${SHOP_DSN}\n", "  dsn: ${SHOP_DSN}\n  replication_dsn: ${SHOP_REPL_DSN}\n", 1)
	if !strings.Contains(shop, "replication_dsn") {
		t.Fatal("could not add replication_dsn to the example")
	}
	writeFile(t, filepath.Join(systems, "shop.yaml"), shop)
	writeFile(t, filepath.Join(systems, "warehouse.yaml"), readFile(t, filepath.Join(example, "systems", "warehouse.yaml")))
	f := newFleet(t, fleetOptions{env: []string{"SYSTEMS_DIR=" + systems,
		"SHOP_REPL_DSN=postgres://postgres@" + closedAddr(t) + "/postgres?sslmode=disable&connect_timeout=2"}})
	ingest := f.ingest("ingest")
	addr := httpAddr(t, ingest)
	var body string
	waitFor(t, "the ingest to report its source", 30*time.Second, func() bool {
		var code int
		code, body = get(t, "http://"+addr+"/readyz")
		return code == 503 && strings.Contains(body, "shop: failing")
	})
	if !strings.Contains(body, "source unavailable: replication connection to shop") || strings.Contains(body, "target") {
		t.Fatalf("readyz:\n%s", body)
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

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
