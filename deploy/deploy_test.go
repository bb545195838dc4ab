// Package deploy holds the container and cluster files; its test checks
// that they parse and point at what the repository builds.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestComposeFileIsValid(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed (apt-get install docker-compose); no Docker engine is needed to validate")
	}
	out, err := exec.Command("docker-compose", "-f", "../docker-compose.yml", "config", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

func TestKubernetesManifestsParse(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("kubernetes/remix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	kinds := map[string]bool{}
	for {
		var doc struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if doc.APIVersion == "" || doc.Kind == "" || doc.Metadata.Name == "" {
			t.Fatalf("a document without apiVersion, kind or name: %+v", doc)
		}
		kinds[doc.Metadata.Name] = true
	}
	if !kinds["remix-ingest"] || !kinds["remix-pusher"] {
		t.Fatalf("deployments: %v", kinds)
	}
	if !strings.Contains(string(b), "/readyz") || !strings.Contains(string(b), "/healthz") {
		t.Fatal("probes missing")
	}
}

func TestDockerfileBuildsTheBinaries(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"ingest", "pusher", "remix"} {
		if _, err := os.Stat("../cmd/" + cmd); err != nil {
			t.Fatalf("cmd/%s: %v", cmd, err)
		}
	}
	if !strings.Contains(string(b), "./cmd/...") {
		t.Fatal("the Dockerfile does not build ./cmd/...")
	}
}
