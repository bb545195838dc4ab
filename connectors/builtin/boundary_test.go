package builtin_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestFleetKnowsNoConnector: the packages that run the fleet (ingest,
// pusher, coord, mixer, reconcile) depend on package connectors only, never
// on a connector's own package nor on this registry, so that adding a
// connector touches its own folder and one line here.
func TestFleetKnowsNoConnector(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list dependencies")
	}
	for _, pkg := range []string{"ingest", "pusher", "coord", "mixer", "internal/reconcile"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/sqlpipe/remix/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/sqlpipe/remix/connectors/") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
