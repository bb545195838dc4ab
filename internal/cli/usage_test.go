package cli

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseHelpAndPositionals(t *testing.T) {
	t.Parallel()
	newFS := func() (*flag.FlagSet, *bool) {
		fs := flag.NewFlagSet("remix x", flag.ContinueOnError)
		return fs, fs.Bool("all", false, "everything (env NONE)")
	}
	u := Usage{Synopsis: "remix x SYSTEM [flags]", Summary: "Does x."}
	for _, arg := range []string{"-h", "-help", "--help"} {
		fs, _ := newFS()
		var out, errOut bytes.Buffer
		_, done, code := Parse(fs, u, []string{"shop", arg}, &out, &errOut)
		if !done || code != 0 || errOut.Len() != 0 || !strings.HasPrefix(out.String(), "usage: remix x SYSTEM [flags]\n\nDoes x.\n\nflags:\n  -all") {
			t.Fatalf("%s: done %v, code %d\nstdout:\n%s\nstderr:\n%s", arg, done, code, &out, &errOut)
		}
	}
	fs, all := newFS()
	var out, errOut bytes.Buffer
	rest, done, _ := Parse(fs, u, []string{"shop", "--all", "extra"}, &out, &errOut)
	if done || !*all || strings.Join(rest, ",") != "shop,extra" {
		t.Fatalf("rest %v, done %v, all %v", rest, done, *all)
	}
	fs, _ = newFS()
	_, done, code := Parse(fs, u, []string{"--nope"}, &out, &errOut)
	if !done || code != 2 || !strings.Contains(errOut.String(), "flag provided but not defined: -nope") || !strings.Contains(errOut.String(), "usage: remix x") {
		t.Fatalf("bad flag: done %v code %d: %s", done, code, &errOut)
	}
}

func TestPlural(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0 problems", 1: "1 problem", 2: "2 problems"} {
		if got := Plural(n, "problem", "problems"); got != want {
			t.Errorf("Plural(%d) = %q", n, got)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	if v := Version("remix"); !strings.HasPrefix(v, "remix ") || !strings.Contains(v, "go1.") {
		t.Fatalf("Version = %q", v)
	}
}

func TestEnvFile(t *testing.T) {
	t.Parallel()
	in := "# demo\n\nexport A=1\nB='two words'\nC=\"x\\ty\"\n D = d \n"
	got, err := parseEnvFile(bufio.NewScanner(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"A", "1"}, {"B", "two words"}, {"C", "x\ty"}, {"D", "d"}}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if _, err := parseEnvFile(bufio.NewScanner(strings.NewReader("A=1\nnot a setting\n"))); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v", err)
	}
}

// TestEnvFileLoaded: the variables of the file named by REMIX_ENV_FILE are
// set, those of the environment win. (Not parallel: it sets variables.)
func TestEnvFileLoaded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "remix.env")
	if err := os.WriteFile(path, []byte("REMIX_TEST_ENVFILE_A=from-file\nREMIX_TEST_ENVFILE_B=from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REMIX_ENV_FILE", path)
	t.Setenv("REMIX_TEST_ENVFILE_B", "from-env")
	os.Unsetenv("REMIX_TEST_ENVFILE_A")
	t.Cleanup(func() { os.Unsetenv("REMIX_TEST_ENVFILE_A") })
	if got, err := loadEnvFile(); err != nil || got != path {
		t.Fatalf("loadEnvFile = %q, %v", got, err)
	}
	if a, b := os.Getenv("REMIX_TEST_ENVFILE_A"), os.Getenv("REMIX_TEST_ENVFILE_B"); a != "from-file" || b != "from-env" {
		t.Fatalf("A=%q B=%q", a, b)
	}
}
