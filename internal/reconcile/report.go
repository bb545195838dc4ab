package reconcile

import (
	"fmt"
	"io"
	"strings"
)

// report prints what reading found: per model where it comes from, per
// target location its rows and those no source holds, with a sample.
func report(w io.Writer, cfg *Config, plans []*modelPlan, behind map[string]int64) {
	mode := "dry run, nothing is changed (--apply deletes)"
	if cfg.Apply {
		mode = "deleting what no source holds"
	}
	fmt.Fprintf(w, "reconcile %s: %s\n", cfg.Source, mode)
	if len(plans) == 0 {
		fmt.Fprintf(w, "no target pushes a model that %s fills\n", cfg.Source)
	}
	missing, locations := 0, 0
	for _, p := range plans {
		if p.skip != "" {
			fmt.Fprintf(w, "model %s: left out: %s\n", p.model.Title, p.skip)
			continue
		}
		idents := make([]string, len(p.keyCols))
		for i, c := range p.keyCols {
			idents[i] = c + " → " + p.identity[i]
		}
		fmt.Fprintf(w, "model %s: from %s (row identity %s)\n", p.model.Title, p.own, strings.Join(idents, ", "))
		if len(p.others) > 0 {
			others := make([]string, len(p.others))
			for i, f := range p.others {
				others[i] = f.String()
			}
			fmt.Fprintf(w, "  also from %s: a target row is deleted only when no source holds its key\n", strings.Join(others, ", "))
		}
		for _, t := range p.targets {
			if t.skip != "" {
				fmt.Fprintf(w, "  %s: left out: %s\n", t, t.skip)
				continue
			}
			fmt.Fprintf(w, "  %s: %s, %d without a source row", t, plural(t.rows, "row"), t.missing)
			if t.unidentified > 0 {
				fmt.Fprintf(w, ", %d kept without a key to compare", t.unidentified)
			}
			fmt.Fprintln(w)
			for _, s := range t.sample {
				fmt.Fprintf(w, "    %s\n", s)
			}
			if t.missing > len(t.sample) {
				fmt.Fprintf(w, "    ... and %d more\n", t.missing-len(t.sample))
			}
			missing += t.missing
			if t.missing > 0 {
				locations++
			}
		}
	}
	if len(behind) > 0 {
		fmt.Fprintf(w, "note: the targets have not applied everything in the streams yet (%s); the counts can change (--apply waits for them first)\n", describeBacklog(behind))
	}
	verb := "to delete"
	if cfg.Apply {
		verb = "deleting"
	}
	fmt.Fprintf(w, "%s: %s in %s\n", verb, plural(missing, "row"), plural(locations, "target location"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
