package app

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Widths that keep a status screen within 100 columns.
const (
	idWidth     = 24 // a member id: host-pid-suffix, cut at the front
	holderWidth = 14 // the same, in the lock holder column
	nameWidth   = 18 // a system or model name
	sourceWidth = 12 // a source name in the sources table
)

// renderStatus writes the text form of a view.
func renderStatus(w io.Writer, v StatusView) {
	fmt.Fprintf(w, "remix status: %s, %s\n", v.Redis, v.Time.Format("2006-01-02 15:04:05 MST"))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	section := func(title string) {
		tw.Flush()
		fmt.Fprintf(w, "\n%s\n", title)
	}

	section("MEMBERS")
	if len(v.Members) == 0 {
		fmt.Fprintln(tw, "  (none: no ingest or pusher reported itself)")
	} else {
		fmt.Fprintln(tw, "  KIND\tID\tROLES")
	}
	for _, m := range v.Members {
		var roles []string
		if m.Kind == "ingest" {
			for _, s := range sortedKeys(m.Sources) {
				roles = append(roles, s+": "+m.Sources[s])
			}
		} else {
			for _, t := range sortedKeys(m.Partitions) {
				roles = append(roles, fmt.Sprintf("%s: %s", t, plural(m.Partitions[t], "partition")))
			}
		}
		for i, line := range wrap(roles, 100-idWidth-14) {
			if i == 0 {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", m.Kind, cutFront(m.ID, idWidth), line)
			} else {
				fmt.Fprintf(tw, "  \t\t%s\n", line)
			}
		}
	}

	section("SOURCES")
	if len(v.Sources) > 0 {
		fmt.Fprintln(tw, "  SOURCE\tLOCK HOLDER\tSTATE\tREAD\tCONFIRMED\tUNCONFIRMED\tRETAINED")
	}
	for _, s := range v.Sources {
		holder := "-"
		switch {
		case s.Holder != "":
			holder = fmt.Sprintf("%s #%d", cutFront(s.Holder, holderWidth), s.LockToken)
		case s.LockToken != 0:
			holder = fmt.Sprintf("? #%d", s.LockToken)
		}
		state := cut(s.State, 12)
		if s.Snapshotting {
			state = "snapshot " + strconv.FormatInt(s.SnapshotRows, 10)
			if s.SnapshotEstimate > 0 {
				state = fmt.Sprintf("snapshot %d%%", min(100, s.SnapshotRows*100/s.SnapshotEstimate))
			}
		}
		retained := "-"
		if s.Retained != nil {
			retained = bytesText(*s.Retained)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", cut(s.Name, sourceWidth), holder, state, dash(s.ReadPosition),
			dash(s.ConfirmedPosition), bytesText(s.Unconfirmed), retained)
	}
	for _, s := range v.Sources {
		switch {
		case s.Snapshotting:
			fmt.Fprintf(tw, "  %s: copying the tables: %d of about %d rows\n", cut(s.Name, sourceWidth), s.SnapshotRows, s.SnapshotEstimate)
		case s.Detail != "":
			fmt.Fprintf(tw, "  %s: %s\n", cut(s.Name, sourceWidth), cut(s.Detail, 96-min(len(s.Name), sourceWidth)))
		}
	}

	section("TARGETS")
	if len(v.Targets) > 0 {
		fmt.Fprintln(tw, "  TARGET\tMODEL\tBACKLOG\tOLDEST\tAPPLIED/S\tPARTITIONS PER PUSHER")
	}
	for _, t := range v.Targets {
		if len(t.Models) == 0 {
			fmt.Fprintf(tw, "  %s\t-\t\t\t\t\n", cut(t.Name, nameWidth))
		}
		for _, m := range t.Models {
			backlog := strconv.FormatInt(m.Backlog, 10)
			if m.BacklogAtLeast {
				backlog = "≥" + backlog
			}
			rate := "-"
			if m.AppliedPerSecond != nil {
				rate = strconv.FormatFloat(*m.AppliedPerSecond, 'f', 1, 64)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", cut(t.Name, nameWidth), cut(m.Model, nameWidth), backlog,
				ageText(m.OldestAgeSeconds), rate, owners(m))
		}
	}

	section("DEAD LETTERS")
	if len(v.DeadLetters) > 0 {
		fmt.Fprintln(tw, "  SYSTEM\tENTRIES\tBYTES\tDROPPED\tSUPERSEDED\tLIMIT")
	}
	for _, d := range v.DeadLetters {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%d\t%s, when full: %s\n", cut(d.System, nameWidth), d.Entries, bytesText(uint64(d.Bytes)), d.Dropped, d.Superseded, d.Limit, d.WhenFull)
	}
	tw.Flush()
	if problems := v.Problems(); len(problems) > 0 {
		fmt.Fprintln(w, "\nLOOK AT")
		for _, p := range problems {
			fmt.Fprintf(w, "  %s\n", cut(p, 96))
		}
	}
}

// owners is "3 pushers: 6+5+5", with the partitions nobody holds.
func owners(m ModelView) string {
	counts := make([]int, 0, len(m.Owners))
	for _, n := range m.Owners {
		counts = append(counts, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	parts := make([]string, len(counts))
	for i, n := range counts {
		parts[i] = strconv.Itoa(n)
	}
	out := "none"
	if len(counts) > 0 {
		out = plural(len(counts), "pusher") + ": " + cut(strings.Join(parts, "+"), 20)
	}
	if m.Unowned > 0 {
		out += fmt.Sprintf(", %d unowned", m.Unowned)
	}
	return out
}

// wrap joins items with ", " into lines of at most width columns (an item
// longer than that is cut).
func wrap(items []string, width int) []string {
	var lines []string
	cur := ""
	for _, it := range items {
		it = cut(it, width)
		switch {
		case cur == "":
			cur = it
		case utf8.RuneCountInString(cur)+2+utf8.RuneCountInString(it) <= width:
			cur += ", " + it
		default:
			lines = append(lines, cur+",")
			cur = it
		}
	}
	if cur != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	if strings.HasSuffix(one, "y") {
		return strconv.Itoa(n) + " " + strings.TrimSuffix(one, "y") + "ies"
	}
	return strconv.Itoa(n) + " " + one + "s"
}

// cut shortens s to n columns, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n || n < 2 {
		return s
	}
	return string(r[:n-1]) + "…"
}

// cutFront shortens an id to n columns keeping its end, which tells
// processes apart.
func cutFront(s string, n int) string {
	r := []rune(s)
	if len(r) <= n || n < 2 {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ageText is a short duration: 850ms, 4.2s, 3m12s, 5h4m.
func ageText(seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// bytesText is a size in B, KiB, MiB or GiB.
func bytesText(n uint64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
