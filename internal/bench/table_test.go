package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The summary: every benchmark records its figures here, and TestMain
// prints them as one table when the run ends.
var summary struct {
	mu   sync.Mutex
	rows []string                     // measurements, in the order first recorded
	cell map[string]map[string]string // by measurement, then pipeline
}

// record adds a pipeline's figure for a measurement; several figures of
// one cell are joined.
func record(measurement, pipeline, figure string) {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	if summary.cell == nil {
		summary.cell = map[string]map[string]string{}
	}
	if summary.cell[measurement] == nil {
		summary.cell[measurement] = map[string]string{}
		summary.rows = append(summary.rows, measurement)
	}
	if prev := summary.cell[measurement][pipeline]; prev != "" {
		figure = prev + "<br>" + figure
	}
	summary.cell[measurement][pipeline] = figure
}

func printTable() {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	if len(summary.rows) == 0 {
		return
	}
	cols := []string{"remix", "native", "pgstream"}
	fmt.Println()
	fmt.Println("| measurement | Remix | PostgreSQL replication | pgstream |")
	fmt.Println("|---|---|---|---|")
	for _, m := range summary.rows {
		line := "| " + m + " |"
		for _, c := range cols {
			v := summary.cell[m][c]
			if v == "" {
				v = "—"
			}
			line += " " + v + " |"
		}
		fmt.Println(line)
	}
}

// peakRSS reads VmHWM (kB) of a process.
func peakRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb
		}
	}
	return 0
}
