// Package deploy holds the container, compose and cluster files and the
// Grafana dashboard. Its tests check them without a Docker engine or a
// cluster: the compose file through compose-go, the Kubernetes manifests
// decoded strictly into the API types, the dashboard's queries against the
// metrics catalogue.
package deploy

import (
	"bufio"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

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
	for _, want := range []string{"./cmd/...", "/usr/local/bin/", "FROM debian:bookworm-slim"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the Dockerfile lacks %q: the compose and Kubernetes tests assume it", want)
		}
	}
}

// dockerignore is a small reading of .dockerignore, enough for the patterns
// the file uses: each line a path.Match pattern from the context's root; a
// match excludes the path and everything under it; a leading **/ matches at
// any depth. Exceptions (!) are refused rather than half read.
type dockerignore []string

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	f, err := os.Open("../.dockerignore")
	if err != nil {
		t.Fatalf("the build context needs a .dockerignore: %v", err)
	}
	defer f.Close()
	var d dockerignore
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: this test does not read exceptions (%s)", line)
		}
		d = append(d, strings.TrimPrefix(path.Clean(line), "/"))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d dockerignore) excludes(p string) bool {
	for _, pat := range d {
		anyDepth := strings.HasPrefix(pat, "**/")
		pat = strings.TrimPrefix(pat, "**/")
		parts := strings.Split(p, "/")
		for i := range parts {
			for j := i + 1; j <= len(parts); j++ {
				if i > 0 && !anyDepth {
					break
				}
				if ok, _ := path.Match(pat, strings.Join(parts[i:j], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

// TestBuildContext: the image is built from the sources, without .git or
// build output (.remix/bin, bin/, test binaries), and without nothing the
// build needs.
func TestBuildContext(t *testing.T) {
	t.Parallel()
	d := readDockerignore(t)
	for _, p := range []string{".git", ".git/objects/pack/x.pack", ".remix/bin/remix", "bin/remix", "deploy/deploy.test", "cpu.prof"} {
		if !d.excludes(p) {
			t.Errorf("the build context carries %s", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "deploy/Dockerfile"} {
		if d.excludes(p) {
			t.Errorf("the build context lacks %s, which the build needs", p)
		}
	}
	// Every Go source the binaries are built from is in the context.
	err := filepath.WalkDir("..", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, ".."+string(filepath.Separator)))
		if e.IsDir() && (rel == ".git" || rel == ".remix") {
			return filepath.SkipDir
		}
		if !e.IsDir() && strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") && d.excludes(rel) {
			t.Errorf("the build context lacks %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
