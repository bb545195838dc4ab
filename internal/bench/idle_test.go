package bench

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkIdle measures what a fleet (one ingest, one pusher, Redis) costs
// while nothing changes at its source: CPU milliseconds a second per
// process and Redis commands a second. Whatever it costs idle it also
// costs under load, spread over the rows.
func BenchmarkIdle(b *testing.B) {
	sv := startServers(b)
	const seconds = 10
	s := sv.newSetup(b)
	s.start("ingest", "ingest")
	s.start("pusher", "pusher")
	ro := s.remixRoles()
	s.waitSlotActive(s.slot())
	time.Sleep(3 * time.Second)
	redis0, by0 := redisCalls(s)
	before := sample(ro)
	time.Sleep(seconds * time.Second)
	cpu := sample(ro).since(before)
	redis1, by1 := redisCalls(s)
	s.stop()
	var cmds []string
	for k, v := range by1 {
		if d := v - by0[k]; d > 0 {
			cmds = append(cmds, fmt.Sprintf("%s %.1f", k, float64(d)/seconds))
		}
	}
	sort.Strings(cmds)
	perSecond := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / seconds }
	line := fmt.Sprintf("CPU ms/s: %s; Redis %.1f commands/s (%s)", cpuParts(cpu, perSecond),
		float64(redis1-redis0)/seconds, strings.Join(cmds, ", "))
	fmt.Println("idle fleet, 10 s:", line)
	record("idle fleet, 10 s", "remix", line)
}
