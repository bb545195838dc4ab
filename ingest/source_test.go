package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/connectors"
)

// TestSourceErrorsSaySource: an error that makes a source unavailable reads
// "source unavailable", never "target", and stays ErrUnavailable.
func TestSourceErrorsSaySource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: replication connection: connection refused", connectors.ErrUnavailable), "source unavailable: replication connection: connection refused"},
		{fmt.Errorf("snapshot: %w", fmt.Errorf("%w: reading wal_level: EOF", connectors.ErrUnavailable)), "source unavailable: snapshot: unavailable: reading wal_level: EOF"},
		{errors.New("slot in use"), "slot in use"},
	} {
		got := sourceError(tc.err)
		if got.Error() != tc.want || strings.Contains(got.Error(), "target") {
			t.Errorf("sourceError(%q) = %q, want %q", tc.err, got, tc.want)
		}
		if errors.Is(tc.err, connectors.ErrUnavailable) != errors.Is(got, connectors.ErrUnavailable) {
			t.Errorf("%q lost or gained ErrUnavailable", got)
		}
	}
}
