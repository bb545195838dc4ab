package deploy

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/sqlpipe/remix/internal/testenv"
)

const composeFile = "../docker-compose.yml"

// remixDockerfile builds the image of every Remix service of the compose
// file: the binaries of cmd/ in /usr/local/bin on debian:bookworm-slim.
const remixDockerfile = "deploy/Dockerfile"

// imageCommands lists, per public image the compose file uses, the
// commands its health checks and entrypoints may call. An image missing
// here fails the test: say what it contains before using it.
var imageCommands = map[string][]string{
	"postgres": {"pg_isready", "psql", "sh"},
	"redis":    {"redis-cli", "sh"},
}

// remixImageCommands is what the Remix image holds worth calling: the
// binaries of cmd/ (no curl, no wget).
func remixImageCommands(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("../cmd")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, e := range entries {
		if e.IsDir() {
			cmds = append(cmds, "/usr/local/bin/"+e.Name(), e.Name())
		}
	}
	return cmds
}

// loadCompose loads a compose file as docker compose v2 does, from the
// repository's root, with every profile and an empty environment: what it
// runs must not depend on the shell it is started from.
func loadCompose(path string) (*types.Project, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml"), Content: b}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("remix", true)
		o.Profiles = []string{"*"}
		o.ResolvePaths = true
		// An unset variable is reported by checkVariables, not logged.
		o.Interpolate.Substitute = func(s string, m template.Mapping) (string, error) {
			return template.SubstituteWithOptions(s, m, template.WithoutLogging)
		}
	})
}

// checkCompose lists what is wrong with a compose file.
func checkCompose(t *testing.T, path string) []string {
	t.Helper()
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	problems = append(problems, checkVariables(path)...)
	p, err := loadCompose(path)
	if err != nil {
		return append(problems, "compose-go: "+err.Error())
	}
	remixCmds := remixImageCommands(t)
	roles := map[string]int{}
	demo := 0
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Image == "" {
			errorf("%s: no image name (a built image is named too, so every service that shares it finds it)", name)
		}
		if s.Deploy != nil || s.Scale != nil {
			errorf("%s: deploy or scale set; docker-compose v1 ignores deploy.replicas, so run each process as a service of its own", name)
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if _, err := os.Stat(v.Source); err != nil {
					errorf("%s: mounted path: %v", name, err)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					errorf("%s: volume %s is not declared", name, v.Source)
				}
			}
		}
		for _, f := range s.EnvFiles {
			if _, err := os.Stat(f.Path); err != nil {
				errorf("%s: env file: %v", name, err)
			}
		}
		cmds := remixCmds
		if s.Build != nil {
			if s.Build.Dockerfile != remixDockerfile {
				errorf("%s: built from %s; this test knows what %s holds only", name, s.Build.Dockerfile, remixDockerfile)
			}
		} else {
			repo, _, _ := strings.Cut(s.Image, ":")
			var ok bool
			if cmds, ok = imageCommands[repo]; !ok {
				errorf("%s: image %s is not in imageCommands: list the commands it contains", name, s.Image)
				continue
			}
		}
		if len(s.Entrypoint) > 0 && !slices.Contains(cmds, s.Entrypoint[0]) {
			errorf("%s: entrypoint %q is not in image %s (it has %v)", name, s.Entrypoint[0], s.Image, cmds)
		}
		if s.HealthCheck != nil && !s.HealthCheck.Disable {
			test := s.HealthCheck.Test
			if len(test) < 2 || test[0] != "CMD" {
				errorf("%s: health check %q: use the exec form [\"CMD\", ...] so it needs no shell", name, test)
			} else if !slices.Contains(cmds, test[1]) {
				errorf("%s: health check runs %q, which image %s does not contain (it has %v)", name, test[1], s.Image, cmds)
			}
		}
		if slices.Contains(s.Profiles, "demo") {
			demo++
		}
		if s.Build != nil && len(s.Entrypoint) > 0 {
			roles[filepath.Base(s.Entrypoint[0])]++
			problems = append(problems, checkRemixService(t, s)...)
		}
	}
	if roles["ingest"] < 2 || roles["pusher"] < 2 {
		errorf("processes per role %v: want two ingests (one reads, one stands by) and two pushers", roles)
	}
	if demo == 0 {
		errorf("no service under profile demo")
	}
	for _, db := range []struct{ name, port string }{{"shop", "5432"}, {"warehouse", "5432"}, {"redis", "6379"}} {
		if s, err := p.GetService(db.name); err != nil {
			errorf("%v", err)
		} else if !publishes(s, db.port) {
			errorf("%s: port %s is not published on 127.0.0.1", db.name, db.port)
		}
	}
	return problems
}

// checkVariables: `docker compose up` works from a shell with nothing set.
func checkVariables(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for name, v := range template.ExtractVariables(raw, template.DefaultPattern) {
		if v.DefaultValue == "" {
			problems = append(problems, fmt.Sprintf("${%s} has no default", name))
		}
	}
	return problems
}

// checkRemixService checks a Remix process: its health check asks its own
// HTTP address, its port is published, it waits for Redis, and every
// ${VAR} of the configuration it mounts is set.
func checkRemixService(t *testing.T, s types.ServiceConfig) []string {
	t.Helper()
	var problems []string
	errorf := func(format string, args ...any) {
		problems = append(problems, s.Name+": "+fmt.Sprintf(format, args...))
	}
	port := httpPort(s.Command)
	if port == "" {
		errorf("no --http-addr :PORT in %q", s.Command)
		return problems
	}
	if s.HealthCheck == nil || len(s.HealthCheck.Test) != 4 || s.HealthCheck.Test[2] != "healthcheck" {
		errorf("the health check is not `remix healthcheck URL`")
	} else if u, err := url.Parse(s.HealthCheck.Test[3]); err != nil || u.Port() != port ||
		(u.Path != "/readyz" && u.Path != "/healthz") || !net.ParseIP(u.Hostname()).IsLoopback() {
		errorf("health check URL %q does not ask the process's own /healthz or /readyz on port %s", s.HealthCheck.Test[3], port)
	}
	if !publishes(s, port) {
		errorf("port %s (/healthz, /readyz, /metrics) is not published on 127.0.0.1", port)
	}
	if d, ok := s.DependsOn["redis"]; !ok || d.Condition != types.ServiceConditionHealthy {
		errorf("does not wait for a healthy redis")
	}
	needs, err := configVariables(s)
	if err != nil {
		errorf("reading its configuration: %v", err)
	}
	for _, need := range needs {
		if v, ok := s.Environment[need]; !ok || v == nil || *v == "" {
			errorf("the mounted configuration needs ${%s}, which the service does not set", need)
		}
	}
	return problems
}

func httpPort(command types.ShellCommand) string {
	for i, a := range command {
		if a == "--http-addr" && i+1 < len(command) {
			_, port, _ := strings.Cut(command[i+1], ":")
			return port
		}
	}
	return ""
}

func publishes(s types.ServiceConfig, port string) bool {
	for _, p := range s.Ports {
		if strconv.Itoa(int(p.Target)) == port && p.Published != "" && p.HostIP == "127.0.0.1" {
			return true
		}
	}
	return false
}

// unsetVariable matches ${NAME} in a configuration file: a variable
// without a default (${NAME:-x} has one).
var unsetVariable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// configVariables lists the variables without a default in the files a
// service mounts under /config.
func configVariables(s types.ServiceConfig) ([]string, error) {
	var names []string
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind || !strings.HasPrefix(v.Target, "/config/") {
			continue
		}
		err := filepath.WalkDir(v.Source, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			for _, m := range unsetVariable.FindAllSubmatch(b, -1) {
				names = append(names, string(m[1]))
			}
			return err
		})
		if err != nil {
			return names, err
		}
	}
	return names, nil
}

func TestComposeFileIsValid(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(composeFile); err != nil {
		t.Fatalf("the compose file is an input of this test: %v", err)
	}
	for _, p := range checkCompose(t, composeFile) {
		t.Error(p)
	}
}

// TestComposeChecksCatch: each bad fixture is refused for its reason.
func TestComposeChecksCatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, want string }{
		{"01-curl-healthcheck.yml", `health check runs "curl", which image remix:local does not contain`},
		{"02-missing-mount.yml", "mounted path"},
		{"03-variable-without-default.yml", "${SHOP_PASSWORD} has no default"},
		{"04-replicas.yml", "deploy or scale set"},
		{"05-unnamed-image.yml", "ingest-1: no image name"},
		{"06-unpublished-port.yml", "pusher-2: port 8080 (/healthz, /readyz, /metrics) is not published"},
		{"07-missing-dsn.yml", "needs ${WAREHOUSE_DSN}"},
		{"08-shell-healthcheck.yml", "use the exec form"},
		{"09-healthcheck-other-port.yml", "does not ask the process's own /healthz or /readyz on port 8080"},
		{"10-missing-env-file.yml", "env file"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			problems := checkCompose(t, filepath.Join("testdata", "compose", tc.file))
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("want a problem with %q; got %q", tc.want, problems)
			}
		})
	}
}

// TestComposeFileWithDockerCompose asks docker-compose v1 to check the file
// too where it is installed (Debian's docker-compose package reads a file
// without an engine). compose-go above, the library of docker compose v2,
// always runs.
func TestComposeFileWithDockerCompose(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Log("docker-compose (v1) is not installed: the file was checked by compose-go only")
		return
	}
	cmd := exec.Command(bin, "-f", composeFile, "--profile", "demo", "config", "-q")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

// TestComposeLoadGenerator runs the demo profile's SQL (deploy/compose/load.sql)
// round after round against the example's shop schema on a real PostgreSQL,
// as the load service's psql loop does, and checks that what it writes fits
// the customer and order models.
func TestComposeLoadGenerator(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	conn, err := pgx.Connect(ctx, testenv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, err := os.ReadFile("../examples/postgresql_to_postgresql/source.sql")
	if err != nil {
		t.Fatal(err)
	}
	load, err := os.ReadFile("compose/load.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	const rounds = 60
	for range rounds {
		if _, err := conn.Exec(ctx, string(load)); err != nil {
			t.Fatalf("a round of load.sql: %v", err)
		}
	}
	var customers, orders, moved, bad int
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM customers),
		(SELECT count(*) FROM orders),
		(SELECT count(*) FROM orders WHERE status <> 'new'),
		(SELECT count(*) FROM customers WHERE full_name = '' OR email !~ '^[^@ ]+@[^@ ]+\.[a-z]+$')
		+ (SELECT count(*) FROM orders WHERE status NOT IN ('new', 'paid', 'shipped', 'cancelled') OR total < 0)`).
		Scan(&customers, &orders, &moved, &bad)
	if err != nil {
		t.Fatal(err)
	}
	if customers != rounds || orders == 0 || orders > rounds || moved == 0 || bad != 0 {
		t.Fatalf("after %d rounds: %d customers, %d orders (%d moved on), %d rows that do not fit the models", rounds, customers, orders, moved, bad)
	}
}
