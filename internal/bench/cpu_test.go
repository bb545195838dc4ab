package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// procStat reads a process's parent and its CPU time (user + system).
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command sits in parentheses and may hold spaces: fields are
	// counted after its closing one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, time.Duration(utime+stime) * clockTick, true
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

// children lists the processes whose parent is ppid.
func children(ppid int) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if pp, _, ok := procStat(pid); ok && pp == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// roles says which processes make up each part of a pipeline, read when a
// sample is taken: processes come and go (a walsender starts with its
// reader).
type roles map[string]func() []int

// cpuSample is the CPU time of every process of every role.
type cpuSample map[string]map[int]time.Duration

func sample(r roles) cpuSample {
	out := cpuSample{}
	for role, pids := range r {
		m := map[int]time.Duration{}
		for _, pid := range pids() {
			if _, cpu, ok := procStat(pid); ok {
				m[pid] = cpu
			}
		}
		out[role] = m
	}
	return out
}

// since is the CPU each role used between an earlier sample and this one;
// a process absent from the earlier one counts whole.
func (after cpuSample) since(before cpuSample) map[string]time.Duration {
	out := map[string]time.Duration{}
	for role, m := range after {
		var d time.Duration
		for pid, cpu := range m {
			d += cpu - before[role][pid]
		}
		out[role] = d
	}
	return out
}

// walsenders are a PostgreSQL server's walsender processes: what decoding
// and sending the WAL costs the source.
func walsenders(postmaster int) []int {
	var out []int
	for _, pid := range children(postmaster) {
		if strings.Contains(cmdline(pid), "walsender") {
			out = append(out, pid)
		}
	}
	return out
}

// serverBut is every process of a PostgreSQL server except some backends
// (the benchmark's own polling connection).
func serverBut(postmaster int, except ...int) []int {
	out := []int{postmaster}
	for _, pid := range children(postmaster) {
		skip := false
		for _, e := range except {
			skip = skip || pid == e
		}
		if !skip {
			out = append(out, pid)
		}
	}
	return out
}

// remixRoles are the parts of a Remix run: its walsender, ingest, pushers,
// Redis and the target server.
func (s *setup) remixRoles() roles {
	pidsOf := func(role string) func() []int {
		return func() []int {
			var out []int
			for _, p := range s.procs[role] {
				out = append(out, p.Pid())
			}
			return out
		}
	}
	return roles{
		"walsender": func() []int { return walsenders(s.sv.src.Pid()) },
		"ingest":    pidsOf("ingest"),
		"pusher":    pidsOf("pusher"),
		"redis":     func() []int { return []int{s.sv.redis.Pid()} },
		"target":    func() []int { return serverBut(s.sv.dst.Pid(), s.pollPid) },
	}
}

// otherRoles are the parts of a pipeline without Remix: the walsender,
// the target server (where native replication's apply worker runs) and
// any tool's own processes.
func (s *setup) otherRoles(tool string, pids func() []int) roles {
	r := roles{
		"walsender": func() []int { return walsenders(s.sv.src.Pid()) },
		"target":    func() []int { return serverBut(s.sv.dst.Pid(), s.pollPid) },
	}
	if pids != nil {
		r[tool] = pids
	}
	return r
}

// redisCalls is the number of commands Redis has run, in all and by
// command.
func redisCalls(s *setup) (total int64, by map[string]int64) {
	c := redis.NewClient(&redis.Options{Addr: s.sv.redis.Addr()})
	defer c.Close()
	info, err := c.Info(s.ctx, "commandstats").Result()
	if err != nil {
		s.b.Fatal(err)
	}
	by = map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				by[strings.TrimPrefix(name, "cmdstat_")] = n
				total += n
			}
		}
	}
	return total, by
}

// targetCommits is the number of transactions committed in the target
// database (each Remix write is one round trip and one transaction).
func targetCommits(s *setup) int64 {
	var n int64
	s.poll.Exec(s.ctx, `SELECT pg_stat_clear_snapshot()`)
	s.poll.QueryRow(s.ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n
}

// perRow is a duration per row in µs.
func perRow(d time.Duration, rows int) float64 { return float64(d.Microseconds()) / float64(rows) }
