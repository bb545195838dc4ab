package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQLURL returns the shared test MariaDB's URL (REMIX_TEST_MYSQL_URL, set
// by scripts/test-servers.sh: mysql://user:password@host:port/). Without it
// the test skips, or fails under CI.
func MySQLURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REMIX_TEST_MYSQL_URL")
	if u == "" {
		Missing(t, "REMIX_TEST_MYSQL_URL is not set")
	}
	return u
}

// mysqlConfig turns a mysql:// URL into the Go driver's configuration.
func mysqlConfig(t testing.TB, raw string) *mysql.Config {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "mysql" {
		t.Fatalf("REMIX_TEST_MYSQL_URL: not a mysql:// URL")
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net, cfg.Addr = "tcp", u.Host
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.MultiStatements = true
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	return cfg
}

// OpenMySQL opens a connection pool to a mysql:// URL, closed at the end of
// the test; statements may hold several queries separated by ';'.
func OpenMySQL(t testing.TB, raw string) *sql.DB {
	t.Helper()
	connector, err := mysql.NewConnector(mysqlConfig(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(8)
	t.Cleanup(func() { db.Close() })
	return db
}

// NewMySQLDatabase creates a database for this test on the shared MariaDB
// and returns its mysql:// URL; it is dropped when the test ends.
func NewMySQLDatabase(t testing.TB) string {
	t.Helper()
	return newMySQLDatabaseOn(t, MySQLURL(t))
}

func newMySQLDatabaseOn(t testing.TB, serverURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connector, err := mysql.NewConnector(mysqlConfig(t, serverURL))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		Missing(t, "cannot reach MariaDB at %s: %v", redactURL(serverURL), err)
	}
	name := UniqueName("remix_t")
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := mysql.NewConnector(mysqlConfig(t, serverURL)); err == nil {
			db := sql.OpenDB(c)
			_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
			db.Close()
		}
	})
	u, _ := url.Parse(serverURL)
	u.Path = "/" + name
	return u.String()
}

// MariaDBServer is a private mariadbd process with a binary log, for tests
// that purge its binary logs or kill it. Its data directory survives
// restarts.
type MariaDBServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMariaDB starts a private MariaDB (REMIX_TEST_MARIADBD, or mariadbd
// on PATH or in /usr/sbin) on a free port, configured as
// scripts/test-servers.sh configures the shared one. It is killed at the
// end of the test.
func StartMariaDB(t testing.TB) *MariaDBServer {
	t.Helper()
	bin := os.Getenv("REMIX_TEST_MARIADBD")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("mariadbd"); err != nil {
			if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
				Missing(t, "no mariadbd binary (REMIX_TEST_MARIADBD unset, none on PATH)")
			}
			bin = "/usr/sbin/mariadbd"
		}
	}
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		Missing(t, "no mariadb-install-db on PATH")
	}
	s := &MariaDBServer{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(s.dir, "data"), "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	s.Start()
	t.Cleanup(func() { s.Kill() })
	return s
}

// URL is the server's mysql:// URL (user root, no password).
func (s *MariaDBServer) URL() string { return fmt.Sprintf("mysql://root@127.0.0.1:%d/", s.port) }

// NewDatabase creates a database on this server for the test and returns
// its URL.
func (s *MariaDBServer) NewDatabase(t testing.TB) string {
	t.Helper()
	return newMySQLDatabaseOn(t, s.URL())
}

// Start starts the server (again) and waits until it answers.
func (s *MariaDBServer) Start() {
	s.t.Helper()
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(s.dir, "data"), "--port=" + strconv.Itoa(s.port),
		"--bind-address=127.0.0.1", "--socket=" + filepath.Join(s.dir, "mariadbd.sock"), "--skip-name-resolve",
		"--log-error=" + filepath.Join(s.dir, "error.log"), "--log-bin=" + filepath.Join(s.dir, "data", "binlog"),
		"--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL", "--server-id=1",
		"--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start mariadbd: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	connector, err := mysql.NewConnector(mysqlConfig(s.t, s.URL()))
	if err != nil {
		s.t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var datadir string
		err := db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&datadir)
		cancel()
		if err == nil {
			// The port was free when chosen; make sure the server answering
			// is this one.
			if !strings.HasPrefix(datadir, s.dir) {
				s.t.Fatalf("another MariaDB answers on port %d (taken after it was chosen)", s.port)
			}
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			s.t.Fatalf("mariadbd exited at start:\n%s", tail(string(log), 3000))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("mariadbd did not answer within a minute: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *MariaDBServer) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// StartMariaDBDatabase creates a database for this test on the server at
// serverURL and returns its URL.
func StartMariaDBDatabase(t testing.TB, serverURL string) string {
	t.Helper()
	return newMySQLDatabaseOn(t, serverURL)
}
