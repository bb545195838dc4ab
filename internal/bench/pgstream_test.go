package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sqlpipe/remix/internal/testenv"
)

// pgstreamBin is the pgstream binary to compare with (REMIX_BENCH_PGSTREAM),
// "" to leave it out. scripts/bench.sh builds v1.3.1 when it can.
func pgstreamBin() string { return os.Getenv("REMIX_BENCH_PGSTREAM") }

// pgstreamConfig writes straight from the slot (wal2json) to the target,
// upserting, in batches of up to 5 000 rows sent at least every 5 ms.
const pgstreamConfig = `source:
  postgres:
    url: %q
    mode: replication
    replication:
      replication_slot: %q
target:
  postgres:
    url: %q
    batch:
      timeout: 5
      size: 5000
    on_conflict_action: update
modifiers:
  injector:
    enabled: true
  filter:
    include_tables:
      - items
`

// pgstream sets pgstream up on a setup's databases (its slot and its
// schema in the source) and returns a function that starts it.
func (s *setup) pgstream() func() *testenv.Process {
	s.b.Helper()
	slot := s.slot()
	cfg := filepath.Join(s.b.TempDir(), "pgstream.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(pgstreamConfig, s.srcURL, slot, s.dstURL)), 0o644)
	out, err := exec.Command(pgstreamBin(), "init", "-c", cfg, "--log-level", "error").CombinedOutput()
	if err != nil {
		s.b.Fatalf("pgstream init: %v\n%s", err, out)
	}
	return func() *testenv.Process {
		p := testenv.StartProcess(s.b, "pgstream", nil, pgstreamBin(), "run", "-c", cfg, "--log-level", "error")
		s.procs["pgstream"] = append(s.procs["pgstream"], p)
		return p
	}
}

func (s *setup) pgstreamRoles() roles {
	return s.otherRoles("pgstream", func() []int {
		var out []int
		for _, p := range s.procs["pgstream"] {
			out = append(out, p.Pid())
		}
		return out
	})
}

func pgstreamCatchUp(b *testing.B, sv *servers, n, perTx int) run {
	s := sv.newSetup(b)
	start := s.pgstream() // the slot exists from here on
	s.commit(1, n, perTx)
	r := s.pgstreamRoles()
	before := sample(r)
	t0 := time.Now()
	start()
	first, last := s.waitRows(n, 10*time.Minute)
	cpu := sample(r).since(before)
	s.stop()
	return run{total: last.Sub(t0), first: first.Sub(t0), cpu: cpu}
}
