package connectors

import (
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
)

// MissingFields keeps, for a source, the locations that lack fields their
// receive mixer reads (a column renamed or dropped while the source
// streams). A source checks each new description of a location with Check,
// dead-letters the location's upserts while Check returns an error, and
// reports Problem for readiness (ProblemReporter). Safe for concurrent use;
// the zero value is ready.
type MissingFields struct {
	mu   sync.Mutex
	gone map[string]*MissingFieldsError
}

// Check compares the fields a location has now with those its receive
// mixer needs. It records the result, logs when the location loses fields
// or gets them back, and returns what is missing (nil when nothing is).
func (m *MissingFields) Check(log *slog.Logger, loc string, need map[string]bool, have []string) *MissingFieldsError {
	var missing []string
	for f := range need {
		if !slices.Contains(have, f) {
			missing = append(missing, f)
		}
	}
	var gone *MissingFieldsError
	if len(missing) > 0 {
		sort.Strings(missing)
		gone = &MissingFieldsError{Location: loc, Missing: missing, Have: have}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.gone[loc]
	switch {
	case gone == nil && prev != nil:
		delete(m.gone, loc)
		log.Info("the mapped columns of a table are back: its changes flow again", "table", loc)
	case gone != nil && (prev == nil || !slices.Equal(prev.Missing, gone.Missing)):
		if m.gone == nil {
			m.gone = map[string]*MissingFieldsError{}
		}
		m.gone[loc] = gone
		log.Error("columns the receive mixer reads are gone from a table: its inserts and updates are dead-lettered until the mixer or the table is fixed",
			"table", loc, "missing", strings.Join(gone.Missing, ","), "columns", strings.Join(gone.Have, ","))
	case gone != nil:
		m.gone[loc] = gone
	}
	return gone
}

// Problem reports the locations that lack fields, sorted, on one line
// (readiness shows a line per source), or nil.
func (m *MissingFields) Problem() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.gone) == 0 {
		return nil
	}
	locs := make([]string, 0, len(m.gone))
	for loc := range m.gone {
		locs = append(locs, loc)
	}
	sort.Strings(locs)
	errs := make(problems, len(locs))
	for i, loc := range locs {
		errs[i] = m.gone[loc]
	}
	return errs
}

// problems are several errors on one line.
type problems []error

func (p problems) Error() string {
	texts := make([]string, len(p))
	for i, e := range p {
		texts[i] = e.Error()
	}
	return strings.Join(texts, "; ")
}

func (p problems) Unwrap() []error { return p }
