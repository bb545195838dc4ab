package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// EnvFileName is the file of settings a binary reads from its own folder
// (unless REMIX_ENV_FILE names another): KEY=value lines, as a shell
// would source them. scripts/quickstart.sh writes one beside the binaries
// it builds, so the commands it suggests work from any shell.
const EnvFileName = "remix.env"

// loadEnvFile sets the variables of the env file that the environment does
// not set already, and returns the file's path ("" when there is none).
func loadEnvFile() (string, error) {
	path := os.Getenv("REMIX_ENV_FILE")
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", nil
		}
		path = filepath.Join(filepath.Dir(exe), EnvFileName)
		if _, err := os.Stat(path); err != nil {
			return "", nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return path, fmt.Errorf("reading settings: %w", err)
	}
	defer f.Close()
	vars, err := parseEnvFile(bufio.NewScanner(f))
	if err != nil {
		return path, fmt.Errorf("reading settings from %s: %w", path, err)
	}
	for _, kv := range vars {
		if _, set := os.LookupEnv(kv[0]); !set {
			os.Setenv(kv[0], kv[1])
		}
	}
	return path, nil
}

// parseEnvFile reads KEY=value lines: blank lines and # comments are
// skipped, "export " may lead, and a value may be quoted ('...' as is,
// "..." with Go escapes).
func parseEnvFile(sc *bufio.Scanner) ([][2]string, error) {
	var out [][2]string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("line %d: expected KEY=value", n)
		}
		val = strings.TrimSpace(val)
		switch {
		case len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'':
			val = val[1 : len(val)-1]
		case len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"':
			u, err := strconv.Unquote(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			val = u
		}
		out = append(out, [2]string{key, val})
	}
	return out, sc.Err()
}
