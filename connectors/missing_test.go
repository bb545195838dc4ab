package connectors_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/connectors"
)

// TestMissingFieldsTracksLocations: a location that loses a field is
// reported (sorted, one line, logged once per change), one that gets it
// back is not, and the error says what the location has now.
func TestMissingFieldsTracksLocations(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var m connectors.MissingFields
	need := map[string]bool{"id": true, "full_name": true, "email": true}
	if err := m.Check(log, "public.b", need, []string{"id", "full_name", "email", "extra"}); err != nil || m.Problem() != nil {
		t.Fatalf("nothing missing: %v, %v", err, m.Problem())
	}
	gone := m.Check(log, "public.b", need, []string{"id", "display_name"})
	if gone == nil || strings.Join(gone.Missing, ",") != "email,full_name" || strings.Join(gone.Have, ",") != "id,display_name" {
		t.Fatalf("missing: %+v", gone)
	}
	m.Check(log, "public.b", need, []string{"id", "display_name", "more"}) // the same fields missing: logged once
	m.Check(log, "public.a", need, []string{"id", "email"})
	err := m.Problem()
	var first *connectors.MissingFieldsError
	if err == nil || !errors.As(err, &first) || first.Location != "public.a" ||
		strings.Index(err.Error(), "public.b has") < strings.Index(err.Error(), "public.a has") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("problem: %v", err)
	}
	if n := strings.Count(logs.String(), "are gone from a table"); n != 2 {
		t.Fatalf("%d logged losses, want 2 (one per table):\n%s", n, logs.String())
	}
	if m.Check(log, "public.a", need, []string{"id", "full_name", "email"}) != nil || m.Check(log, "public.b", need, []string{"id", "full_name", "email"}) != nil {
		t.Fatal("the fields are back but still missing")
	}
	if err := m.Problem(); err != nil || !strings.Contains(logs.String(), "are back") {
		t.Fatalf("after the fields came back: %v\n%s", err, logs.String())
	}
}
