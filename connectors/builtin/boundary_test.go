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

// TestIngestLinksNoCloudSDK: the ingest writes no dataset, so it links none
// of the cloud stores' SDKs (they take a binary from 58 to 110 MB and its
// memory at rest from about 19 to 45 MB); the pusher and remix, which write
// datasets, link all three.
func TestIngestLinksNoCloudSDK(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list dependencies")
	}
	sdks := []string{"github.com/aws/aws-sdk-go-v2/service/s3", "cloud.google.com/go/storage", "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"}
	for _, bin := range []string{"ingest", "pusher", "remix"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/sqlpipe/remix/cmd/"+bin).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", bin, err, out)
		}
		deps := map[string]bool{}
		for _, dep := range strings.Fields(string(out)) {
			deps[dep] = true
		}
		for _, sdk := range sdks {
			if want := bin != "ingest"; deps[sdk] != want {
				t.Errorf("cmd/%s links %s: %v, want %v", bin, sdk, deps[sdk], want)
			}
		}
	}
}
