package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// strictMode is the sql_mode of every session: a value that does not fit
// its column is refused, never cut, rounded to zero or replaced by a zero
// date, and an explicit 0 in an AUTO_INCREMENT column stays 0.
const strictMode = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO"

// parseDSN reads a dsn in the Go driver's form
// (user:password@tcp(host:port)/database?params) or as a URL
// (mysql://user:password@host:port/database?params). The password never
// appears in an error.
func parseDSN(dsn config.Secret) (*driver.Config, error) {
	raw := dsn.Reveal()
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrDSN)
	}
	if !strings.HasPrefix(raw, "mysql://") {
		cfg, err := driver.ParseDSN(raw)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %s", ErrDSN, dsn, redact(err.Error(), raw))
		}
		return cfg, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %s: not a URL", ErrDSN, dsn)
	}
	// The query's parameters are the driver's: read them as it would.
	cfg, err := driver.ParseDSN("/" + strings.TrimPrefix(u.Path, "/") + "?" + u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %s", ErrDSN, dsn, redact(err.Error(), raw))
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	host := u.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "3306")
	}
	cfg.Addr = host
	return cfg, nil
}

// redact removes a password from a message, should a driver quote it.
func redact(msg, raw string) string {
	if cfg, err := driver.ParseDSN(raw); err == nil && cfg.Passwd != "" {
		msg = strings.ReplaceAll(msg, cfg.Passwd, "xxxxx")
	}
	if u, err := url.Parse(raw); err == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// sessionConfig is a system's dsn with the session Remix needs: UTC
// (TIMESTAMP values read and written as UTC), utf8mb4, the strict sql_mode,
// values as text, placeholders filled in by the client (one round trip per
// statement).
func sessionConfig(sys *config.System) (*driver.Config, error) {
	cfg, err := parseDSN(sys.Settings.Secret(SettingDSN))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sys.PosOf(SettingDSN), err)
	}
	cfg.ParseTime = false
	cfg.InterpolateParams = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["sql_mode"] = "'" + strictMode + "'"
	if err := cfg.Apply(driver.Charset("utf8mb4", "")); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return cfg, nil
}

// openDB opens the query pool of a system with its pool settings and
// checks that the server answers.
func openDB(ctx context.Context, sys *config.System) (*sql.DB, *driver.Config, error) {
	cfg, err := sessionConfig(sys)
	if err != nil {
		return nil, nil, err
	}
	connector, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %s", sys.Name, ErrDSN, redact(err.Error(), sys.Settings.Secret(SettingDSN).Reveal()))
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(int(sys.Settings.Int(SettingMaxOpen)))
	db.SetMaxIdleConns(int(min(sys.Settings.Int(SettingMaxIdle), sys.Settings.Int(SettingMaxOpen))))
	db.SetConnMaxIdleTime(sys.Settings.Duration(SettingMaxIdleTime))
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("%w: connecting to %s (%s): %s", connectors.ErrUnavailable, sys.Name, sys.Settings.Secret(SettingDSN),
			redact(err.Error(), sys.Settings.Secret(SettingDSN).Reveal()))
	}
	return db, cfg, nil
}

// splitAddr returns the host and port of a tcp address.
func splitAddr(addr string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, err
	}
	return host, uint16(p), nil
}

// qualify turns a table setting (table or database.table) into
// database.table, with the dsn's database.
func qualify(name, database string) (string, error) {
	if strings.Contains(name, ".") {
		return name, nil
	}
	if database == "" {
		return "", fmt.Errorf("%q names no database and the dsn has none: write it as database.%s", name, name)
	}
	return database + "." + name, nil
}

// quoteIdent quotes an identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteTable quotes database.table.
func quoteTable(loc string) string {
	db, table, _ := strings.Cut(loc, ".")
	return quoteIdent(db) + "." + quoteIdent(table)
}

// MySQL and MariaDB error numbers Remix classifies.
const (
	errDupEntry          = 1062
	errBadNull           = 1048
	errNoSuchTable       = 1146
	errBadField          = 1054
	errTableAccessDenied = 1142
	errAccessDenied      = 1045
	errDBAccessDenied    = 1044
	errSpecificAccess    = 1227
	errLockWait          = 1205
	errDeadlock          = 1213
	errPacketTooLarge    = 1153
	errMasterFatal       = 1236 // the binary log dump failed: a purged position, a server_id clash
	errCheckMySQL        = 3819
	errCheckMariaDB      = 4025
)

// mapError classifies a server error for the pusher: a value or row the
// target refuses is permanent (dead-lettered), trouble with the target as a
// whole (unreachable, a table or column gone, no permission) is
// unavailable (retried until fixed), lock conflicts are transient.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var me *driver.MySQLError
	if errors.As(err, &me) {
		if (me.Number == errCheckMySQL || me.Number == errCheckMariaDB) && strings.Contains(me.Message, fenceConstraint) {
			return fmt.Errorf("%w (%s)", connectors.ErrFenced, me.Message)
		}
		state := string(me.SQLState[:])
		switch {
		case me.Number == errLockWait || me.Number == errDeadlock:
			return fmt.Errorf("%s [%d]", me.Message, me.Number)
		case me.Number == errPacketTooLarge:
			return fmt.Errorf("%w: %s [%d] (raise max_allowed_packet on the server to write rows this large)", connectors.ErrPermanent, me.Message, me.Number)
		case strings.HasPrefix(state, "22"), strings.HasPrefix(state, "23"), me.Number == errCheckMySQL, me.Number == errCheckMariaDB,
			me.Number == 1292, me.Number == 1366, me.Number == 1264, me.Number == 1265, me.Number == 1406, me.Number == 3140:
			// Data exceptions and integrity constraints: the record's fault.
			return fmt.Errorf("%w: %s [%d]", connectors.ErrPermanent, me.Message, me.Number)
		default: // a missing table or column, permissions, a server shutting down...
			return fmt.Errorf("%w: %s [%d]", connectors.ErrUnavailable, me.Message, me.Number)
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, driver.ErrInvalidConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, driver.ErrBusyBuffer) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "EOF") {
		return fmt.Errorf("%w: %v", connectors.ErrUnavailable, err)
	}
	return err
}
