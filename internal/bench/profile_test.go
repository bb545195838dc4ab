package bench

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	promodel "github.com/prometheus/common/model"
)

// profileDir is where CPU profiles of the Remix processes go
// (REMIX_BENCH_PROFILE), "" for none. Read them with go tool pprof.
func profileDir() string { return os.Getenv("REMIX_BENCH_PROFILE") }

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// profile starts CPU profiles of every ingest and pusher for the given
// time, named after the measurement, and returns a function that waits for
// them. It does nothing unless REMIX_BENCH_PROFILE is set.
func (s *setup) profile(name string, d time.Duration) (wait func()) {
	dir := profileDir()
	if dir == "" {
		return func() {}
	}
	os.MkdirAll(dir, 0o755)
	var wg sync.WaitGroup
	for _, role := range []string{"ingest", "pusher"} {
		for i, p := range s.procs[role] {
			port := s.ports[p]
			path := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.pprof", name, role, i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, int(d.Seconds()))
				resp, err := http.Get(url)
				for i := 0; err != nil && i < 40; i++ { // the process may not listen yet
					time.Sleep(50 * time.Millisecond)
					resp, err = http.Get(url)
				}
				if err != nil {
					fmt.Printf("  profile %s: %v\n", path, err)
					return
				}
				defer resp.Body.Close()
				f, err := os.Create(path)
				if err != nil {
					return
				}
				defer f.Close()
				io.Copy(f, resp.Body)
			}()
		}
	}
	return wg.Wait
}

// scrape reads the /metrics of every process of a role; a process that
// does not answer adds nothing.
func (s *setup) scrape(role string) [][]byte {
	var out [][]byte
	for _, p := range s.procs[role] {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.ports[p]))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, b)
	}
	return out
}

// metric sums a metric's samples (lines starting with name, which may
// include the start of its labels) over the processes of a role.
func (s *setup) metric(role, name string) float64 {
	var sum float64
	for _, body := range s.scrape(role) {
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, name) {
				f := strings.Fields(line)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				sum += v
			}
		}
	}
	return sum
}

// allocated reports the bytes the ingest and the pusher allocated per row
// over their lives, read from their /metrics: unlike CPU time, a measure a
// busy machine does not move, so two builds compare in one run each.
func (s *setup) allocated(rows int) string {
	return fmt.Sprintf("allocated per row: ingest %.0f B, pusher %.0f B",
		s.metric("ingest", "go_memstats_alloc_bytes_total")/float64(rows), s.metric("pusher", "go_memstats_alloc_bytes_total")/float64(rows))
}

// histQuantile reads a histogram from the /metrics of a role's processes,
// its buckets added up across them and their series, and returns the upper
// bound of the bucket that holds quantile q (0 when nothing was observed;
// +Inf when it lies past the last bound).
func (s *setup) histQuantile(role, name string, q float64) float64 {
	buckets := map[float64]uint64{} // upper bound -> cumulative count
	var total uint64
	for _, body := range s.scrape(role) {
		parser := expfmt.NewTextParser(promodel.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			s.b.Logf("%s /metrics: %v", role, err)
			continue
		}
		for _, m := range families[name].GetMetric() {
			h := m.GetHistogram()
			total += h.GetSampleCount()
			for _, b := range h.GetBucket() {
				buckets[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
	}
	if total == 0 {
		return 0
	}
	for _, le := range slices.Sorted(maps.Keys(buckets)) {
		if float64(buckets[le]) >= q*float64(total) {
			return le
		}
	}
	return math.Inf(1)
}

// heapProfiles saves a heap profile of every ingest and pusher, named after
// the measurement, when REMIX_BENCH_PROFILE is set. Read them with
// go tool pprof -sample_index=inuse_space.
func (s *setup) heapProfiles(name string) {
	dir := profileDir()
	if dir == "" {
		return
	}
	os.MkdirAll(dir, 0o755)
	for _, role := range []string{"ingest", "pusher"} {
		for i, p := range s.procs[role] {
			path := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.heap.pprof", name, role, i))
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", s.ports[p]))
			if err != nil {
				fmt.Printf("  heap profile %s: %v\n", path, err)
				continue
			}
			f, err := os.Create(path)
			if err == nil {
				io.Copy(f, resp.Body)
				f.Close()
			}
			resp.Body.Close()
		}
	}
}
