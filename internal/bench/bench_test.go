// Package bench measures Remix end to end against PostgreSQL's own logical
// replication and, when its binary is given, pgstream: catch-up throughput,
// steady latency with one to four pushers, scaling against a slow target,
// the initial snapshot, and the CPU every process spends per row. Run it
// with scripts/bench.sh; it prints its figures, reports them as benchmark
// metrics and ends with one table. Nothing here asserts a speed.
//
// Every measurement runs on private servers started for it (a source
// PostgreSQL, a target PostgreSQL and a Redis with AOF), so the CPU read
// from /proc for each process is the measurement's own, not that of other
// tests sharing the machine.
package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	printTable()
	os.Exit(code)
}

const table = `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2),
	created_at timestamptz NOT NULL DEFAULT clock_timestamp())`

// On the target, applied_at records when the row arrived (Remix leaves
// unmapped columns to their defaults; so do the others).
const targetTable = `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2),
	created_at timestamptz, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`

const model = `{"title": "item", "type": "object", "properties": {
	"id": {"type": "integer"}, "name": {"type": ["string", "null"]}, "qty": {"type": ["integer", "null"]},
	"price": {"type": ["number", "null"]}, "created_at": {"type": ["string", "null"], "format": "date-time"}}}`

const systems = `source:
  type: postgresql
  dsn: ${SOURCE_DSN}
  slot_name: ${SOURCE_SLOT}
  linger: ${SOURCE_LINGER:-0s}
  receive_mixer:
    public.items:
      item:
        id: {field: id}
        name: {field: name}
        qty: {field: qty}
        price: {field: price}
        created_at: {field: created_at}
target:
  type: postgresql
  dsn: ${TARGET_DSN}
  writes_in_flight: ${TARGET_WRITES:-4}
  push_mixer:
    item:
      public.items:
        id: {field: id, search_key: true}
        name: {field: name}
        qty: {field: qty}
        price: {field: price}
        created_at: {field: created_at}
`

// servers are one benchmark's private servers and the built binaries.
type servers struct {
	src, dst *testenv.PostgresServer
	redis    *testenv.RedisServer
	bin      string
}

func startServers(b *testing.B) *servers {
	b.Helper()
	sv := &servers{src: testenv.StartPostgres(b), dst: testenv.StartPostgres(b), redis: testenv.StartRedis(b, true), bin: build(b)}
	if pgstreamBin() != "" {
		allowWal2json(b, sv.src.URL())
	}
	return sv
}

// allowWal2json lets pgstream's output plugin be used on a server built to
// allow only some (output_plugin_libraries), where there is such a setting.
func allowWal2json(b *testing.B, url string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var setting string
	if err := conn.QueryRow(ctx, `SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'`).Scan(&setting); err != nil {
		return // no such setting: every plugin may be used
	}
	if strings.Contains(setting, "wal2json") {
		return
	}
	// A list: each name its own item, unquoted.
	if _, err := conn.Exec(ctx, `ALTER SYSTEM SET output_plugin_libraries = `+setting+`, wal2json`); err != nil {
		b.Fatal(err)
	}
	conn.Exec(ctx, `SELECT pg_reload_conf()`)
}

// setup is one measurement's world: a source database, a target database,
// a Redis namespace, and a polling connection to the target whose own CPU
// is left out of the target server's.
type setup struct {
	b        *testing.B
	ctx      context.Context
	sv       *servers
	srcURL   string
	dstURL   string
	src, dst *pgxpool.Pool
	poll     *pgx.Conn
	pollPid  int
	env      []string
	ns       string
	procs    map[string][]*testenv.Process // by role
	ports    map[*testenv.Process]int      // HTTP ports of the Remix processes
}

func (sv *servers) newSetup(b *testing.B, env ...string) *setup {
	b.Helper()
	s := &setup{b: b, ctx: context.Background(), sv: sv, procs: map[string][]*testenv.Process{}, ports: map[*testenv.Process]int{}}
	s.srcURL = sv.src.NewDatabase(b)
	s.dstURL = sv.dst.NewDatabase(b)
	var err error
	if s.src, err = pgxpool.New(s.ctx, s.srcURL); err != nil {
		b.Fatal(err)
	}
	if s.dst, err = pgxpool.New(s.ctx, s.dstURL); err != nil {
		b.Fatal(err)
	}
	if s.poll, err = pgx.Connect(s.ctx, s.dstURL); err != nil {
		b.Fatal(err)
	}
	s.poll.QueryRow(s.ctx, `SELECT pg_backend_pid()`).Scan(&s.pollPid)
	b.Cleanup(func() {
		// After the processes (cleanups run in reverse): their slots go,
		// so the WAL they hold does not pile up over the rounds.
		s.src.Exec(context.Background(), `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active AND database = current_database()`)
		s.poll.Close(context.Background())
		s.src.Close()
		s.dst.Close()
	})
	s.exec(s.src, table)
	s.exec(s.dst, targetTable)
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "systems"), 0o755)
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	os.WriteFile(filepath.Join(dir, "systems", "bench.yaml"), []byte(systems), 0o644)
	os.WriteFile(filepath.Join(dir, "models", "item.json"), []byte(model), 0o644)
	s.ns = testenv.UniqueName("b")
	s.env = append([]string{"SOURCE_DSN=" + s.srcURL, "TARGET_DSN=" + s.dstURL, "SOURCE_SLOT=" + testenv.UniqueName("bench"),
		"REDIS_URL=" + sv.redis.URL(), "REMIX_NAMESPACE=" + s.ns, "SYSTEMS_DIR=" + filepath.Join(dir, "systems"),
		"MODELS_DIR=" + filepath.Join(dir, "models"), "LOG_LEVEL=" + cmp.Or(os.Getenv("REMIX_BENCH_LOG_LEVEL"), "warn")}, env...)
	return s
}

// build builds the binaries to measure, or returns REMIX_BENCH_BIN when it
// names a folder of binaries built elsewhere (an earlier commit's, to
// compare with it in alternating runs under the same harness; an older
// binary may refuse a key of the benchmark's configuration that it did not
// know yet, such as linger or writes_in_flight: remove it for that run).
func build(b *testing.B) string {
	if dir := os.Getenv("REMIX_BENCH_BIN"); dir != "" {
		return dir
	}
	dir := b.TempDir()
	out, err := exec.Command("go", "build", "-o", dir, "github.com/sqlpipe/remix/cmd/...").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

func (s *setup) exec(p *pgxpool.Pool, sql string) {
	s.b.Helper()
	if _, err := p.Exec(s.ctx, sql); err != nil {
		s.b.Fatalf("%s: %v", sql, err)
	}
}

// start runs a Remix binary in the given role, serving Go profiles when
// REMIX_BENCH_PROFILE is set.
func (s *setup) start(role, binary string, env ...string) *testenv.Process {
	name := role + "-" + strconv.Itoa(len(s.procs[role]))
	port := freePort(s.b)
	args := []string{"--http-addr", "127.0.0.1:" + strconv.Itoa(port)}
	if profileDir() != "" {
		args = append(args, "--pprof")
	}
	p := testenv.StartProcess(s.b, name, append(append([]string(nil), s.env...), env...), filepath.Join(s.sv.bin, binary), args...)
	if dir := os.Getenv("REMIX_BENCH_LOGS"); dir != "" { // each process's log, kept (a cleanup runs before the kill's)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s.b.Fatal(err)
		}
		s.b.Cleanup(func() {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s-%d.log", strings.ReplaceAll(s.b.Name(), "/", "_"), name, p.Pid())), []byte(p.Stderr()+strings.Join(p.Output(), "\n")), 0o644)
		})
	}
	s.procs[role] = append(s.procs[role], p)
	s.ports[p] = port
	return p
}

// stop ends a measured pipeline before the next one is measured: its
// processes stop (SIGTERM, SIGKILL after 10 s). Left running until the
// benchmark's end, every earlier round's reader would keep decoding the
// server's WAL (a walsender reads all of it, whatever its database) and
// share the machine with the rounds after it.
func (s *setup) stop() {
	stopProcesses(slices.Concat(slices.Collect(maps.Values(s.procs))...))
}

// stopProcesses sends each process SIGTERM, then SIGKILL to those still
// running 10 s later, and waits until all have ended.
func stopProcesses(ps []*testenv.Process) {
	for _, p := range ps {
		p.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range ps {
		select {
		case <-p.Done():
		case <-time.After(time.Until(deadline)):
			p.Kill()
		}
	}
}

// insertItems is the statement that inserts the benchmark's rows with ids
// from lo to hi (SQL expressions): every benchmark writes the same rows.
func insertItems(lo, hi string) string {
	return fmt.Sprintf(`INSERT INTO items (id, name, qty, price) SELECT g, 'item ' || g, g %% 1000, g * 0.01 FROM generate_series(%s, %s) g`, lo, hi)
}

// commit makes n inserts in transactions of perTx rows, server-side.
func (s *setup) commit(from, n, perTx int) {
	s.b.Helper()
	s.exec(s.src, fmt.Sprintf(`DO $$ BEGIN
		FOR i IN %d..%d BY %d LOOP
			%s;
			COMMIT;
		END LOOP; END $$`, from, from+n-1, perTx, insertItems("i", fmt.Sprintf("i + %d - 1", perTx))))
}

// waitRows polls the target until it holds n rows, and returns when the
// first and the last row arrived: the target's applied_at column, set by
// the server as each row is written, so the figures do not depend on the
// polling interval. The polls run on their own connection, whose CPU the
// measurements leave out.
func (s *setup) waitRows(n int, within time.Duration) (first, last time.Time) {
	s.b.Helper()
	deadline := time.Now().Add(within)
	for {
		var c int
		if err := s.poll.QueryRow(s.ctx, `SELECT count(*) FROM items`).Scan(&c); err != nil {
			s.b.Fatal(err)
		}
		if c >= n {
			if err := s.poll.QueryRow(s.ctx, `SELECT min(applied_at), max(applied_at) FROM items`).Scan(&first, &last); err != nil {
				s.b.Fatal(err)
			}
			return first, last
		}
		if time.Now().After(deadline) {
			s.b.Fatalf("the target has %d of %d rows after %v", c, n, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitSlotActive waits until a reader streams from the slot.
func (s *setup) waitSlotActive(slot string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var n int
		s.src.QueryRow(s.ctx, `SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name = $1`, slot).Scan(&n)
		if n > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.b.Fatalf("nothing ever read slot %s", slot)
}

// waitSlotCaughtUp waits until the slot confirmed everything written so
// far: its reader has published every change.
func (s *setup) waitSlotCaughtUp(slot string, within time.Duration) {
	var target string
	s.src.QueryRow(s.ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&target)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var ok bool
		s.src.QueryRow(s.ctx, `SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`, slot, target).Scan(&ok)
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.b.Fatalf("slot %s did not confirm %s within %v", slot, target, within)
}

// slot is the Remix source's slot name.
func (s *setup) slot() string {
	for _, e := range s.env {
		if v, ok := strings.CutPrefix(e, "SOURCE_SLOT="); ok {
			return v
		}
	}
	return ""
}

// latency reads each row's wait, arrival at the target less its creation
// at the source (both from server clocks), as p50, p99 and max in ms.
func (s *setup) latency() (p50, p99, worst float64) {
	s.b.Helper()
	if err := s.poll.QueryRow(s.ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
		FROM (SELECT extract(epoch FROM applied_at - created_at) * 1000 AS ms FROM items) t`).Scan(&p50, &p99, &worst); err != nil {
		s.b.Fatal(err)
	}
	return p50, p99, worst
}

// steadyLoad inserts rate single-row transactions a second for the given
// seconds, server-side in blocks of 10 ms.
func (s *setup) steadyLoad(rate, seconds int) {
	s.b.Helper()
	const tick = 10 * time.Millisecond
	per := rate / int(time.Second/tick)
	start := time.Now()
	id := 1
	for i := 0; i < seconds*int(time.Second/tick); i++ {
		s.commit(id, per, 1)
		id += per
		if ahead := time.Duration(i+1)*tick - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
}

func rounds() int { return envCount("REMIX_BENCH_ROUNDS", 3) }

// envCount is the positive integer in the environment variable name, else
// def: the benchmarks' sizes and rounds.
func envCount(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
