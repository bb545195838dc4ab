package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// check verifies, before anything is read, that the server can do what
// the receive mixer asks: a row-based binary log with full row images and
// metadata, GTIDs, the privileges a replica needs, a server_id no other
// replica uses, and every mapped table with its columns and a primary key.
func (s *Source) check(ctx context.Context) error {
	var version string
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return fmt.Errorf("%w: %s: %w", connectors.ErrUnavailable, s.sys.Name, err)
	}
	s.flavor = flavorMySQL
	if strings.Contains(strings.ToLower(version), "mariadb") {
		s.flavor = flavorMariaDB
	}
	var problems []string
	vars, err := s.variables(ctx, "log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata", "gtid_mode", "binlog_row_value_options", "server_id")
	if err != nil {
		return err
	}
	want := func(name, value, why string) {
		got, ok := vars[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("the server has no %s (%s needs MySQL 8.0.1 or MariaDB 10.5 or later)", name, why))
		case !strings.EqualFold(got, value):
			problems = append(problems, fmt.Sprintf("%s is %q; set %s = %s (%s)", name, got, name, value, why))
		}
	}
	want("log_bin", "ON", "the source reads the binary log")
	want("binlog_format", "ROW", "the source reads row changes, not statements")
	want("binlog_row_image", "FULL", "an update must carry every column: with MINIMAL, unchanged columns would be missing and the snapshot could not be reconciled with the log")
	want("binlog_row_metadata", "FULL", "column names in the log let the source follow columns added, dropped and renamed while it streams")
	if s.flavor == flavorMySQL {
		want("gtid_mode", "ON", "positions are GTID sets")
		if v := vars["binlog_row_value_options"]; v != "" {
			problems = append(problems, fmt.Sprintf("binlog_row_value_options is %q; set it to '' (partial JSON updates do not carry the whole value)", v))
		}
	}
	if vars["server_id"] == fmt.Sprint(s.serverID) {
		problems = append(problems, fmt.Sprintf("server_id %d is the server's own; set server_id on the source to another number", s.serverID))
	}
	if p, err := s.checkReplicas(ctx); err != nil {
		return err
	} else if p != "" {
		problems = append(problems, p)
	}
	problems = append(problems, s.checkGrants(ctx)...)
	if len(problems) > 0 {
		return fmt.Errorf("%w: source %s (%s):\n  %s", ErrServerSetup, s.sys.Name, version, strings.Join(problems, "\n  "))
	}
	if err := s.loadCharsets(ctx); err != nil {
		return err
	}
	tp, err := s.checkTables(ctx)
	if err != nil {
		return err
	}
	if len(tp) > 0 {
		return fmt.Errorf("source %s does not fit its receive mixer:\n%s", s.sys.Name, tp.Error())
	}
	return s.ensureWatermarkTable(ctx)
}

// variables reads global variables; those the server lacks are absent.
func (s *Source) variables(ctx context.Context, names ...string) (map[string]string, error) {
	q := "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + placeholders(len(names)) + ")"
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the server's variables: %w", connectors.ErrUnavailable, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[strings.ToLower(k)] = v
	}
	return out, rows.Err()
}

// registration is how the source names itself to the server as a replica
// (SHOW REPLICAS, SHOW SLAVE HOSTS): an entry with its server_id and
// another name is another replica.
func (s *Source) registration() string { return "remix:" + s.sys.Name }

// checkReplicas finds another replica registered with this source's
// server_id: both would be cut off again and again, each time the other
// connects.
func (s *Source) checkReplicas(ctx context.Context) (string, error) {
	rows, err := s.db.QueryContext(ctx, "SHOW REPLICAS")
	if err != nil {
		rows, err = s.db.QueryContext(ctx, "SHOW SLAVE HOSTS")
	}
	if err != nil {
		var me *driver.MySQLError
		if errors.As(err, &me) && (me.Number == errSpecificAccess || me.Number == errAccessDenied) {
			return "", nil // privileges are reported by checkGrants
		}
		return "", fmt.Errorf("%w: listing the server's replicas: %w", connectors.ErrUnavailable, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		var id, host string
		for i, c := range cols {
			switch strings.ToLower(c) {
			case "server_id":
				id = vals[i].String
			case "host":
				host = vals[i].String
			}
		}
		if id == fmt.Sprint(s.serverID) && host != s.registration() {
			return fmt.Sprintf("another replica (%q) is connected with server_id %d; give the source a server_id of its own (server_id: in the system's file)", host, s.serverID), nil
		}
	}
	return "", rows.Err()
}

// checkGrants looks for the privileges a replica needs: REPLICATION SLAVE
// to read the binary log, REPLICATION CLIENT (MySQL) or BINLOG MONITOR
// (MariaDB 10.5+) to list the binary logs. A grant through a role is not
// followed: the server then says at the first read.
func (s *Source) checkGrants(ctx context.Context) []string {
	rows, err := s.db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return nil
	}
	defer rows.Close()
	var all, slave, client, roles bool
	for rows.Next() {
		var g string
		if rows.Scan(&g) != nil {
			return nil
		}
		u := strings.ToUpper(g)
		onAll := strings.Contains(u, " ON *.*")
		all = all || onAll && strings.Contains(u, "ALL PRIVILEGES")
		slave = slave || onAll && (strings.Contains(u, "REPLICATION SLAVE") || strings.Contains(u, "REPLICATION REPLICA"))
		client = client || onAll && (strings.Contains(u, "REPLICATION CLIENT") || strings.Contains(u, "BINLOG MONITOR") || strings.Contains(u, "SUPER"))
		roles = roles || !strings.Contains(u, " ON ")
	}
	if all || roles {
		return nil
	}
	var out []string
	if !slave {
		out = append(out, "this user lacks REPLICATION SLAVE (GRANT REPLICATION SLAVE ON *.* TO the dsn's user): it cannot read the binary log")
	}
	if !client {
		what := "REPLICATION CLIENT"
		if s.flavor == flavorMariaDB {
			what = "BINLOG MONITOR"
		}
		out = append(out, fmt.Sprintf("this user lacks %s (GRANT %s ON *.* TO the dsn's user): it cannot list the binary logs", what, what))
	}
	return out
}

// loadCharsets maps the server's collation ids to character sets, for text
// in the binary log.
func (s *Source) loadCharsets(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE CHARACTER_SET_NAME IS NOT NULL AND ID IS NOT NULL")
	if err != nil {
		return fmt.Errorf("%w: reading the collations: %w", connectors.ErrUnavailable, err)
	}
	defer rows.Close()
	s.charset = map[uint64]string{}
	for rows.Next() {
		var id sql.NullInt64
		var cs string
		if err := rows.Scan(&id, &cs); err != nil {
			return err
		}
		if id.Valid {
			s.charset[uint64(id.Int64)] = cs
		}
	}
	return rows.Err()
}

// checkTables checks every mapped table: it exists, has every column the
// receive mixer reads and a primary key, and this user may read it.
func (s *Source) checkTables(ctx context.Context) (config.Errors, error) {
	var problems config.Errors
	for _, loc := range sortedKeys(s.tables) {
		t := s.tables[loc]
		path := []string{"receive_mixer", loc}
		info, err := loadTable(ctx, s.db, loc)
		if err != nil {
			return nil, err
		}
		if info == nil {
			problems = append(problems, problemAt(s.sys, path, "table %s does not exist (or this user may not see it)", loc))
			continue
		}
		t.info, t.keyCols = info, info.pk
		for c := range t.need {
			if info.cols[c] == nil {
				problems = append(problems, problemAt(s.sys, path, "table %s has no column %q", loc, c))
			}
		}
		if len(info.pk) == 0 {
			problems = append(problems, problemAt(s.sys, path, "table %s has no primary key: its changes could not be told apart row by row; add one", loc))
		}
		if _, err := s.db.ExecContext(ctx, "SELECT 1 FROM "+quoteTable(loc)+" LIMIT 0"); err != nil {
			var me *driver.MySQLError
			if errors.As(err, &me) && me.Number == errTableAccessDenied {
				problems = append(problems, problemAt(s.sys, path, "this user may not read %s: GRANT SELECT ON %s TO the dsn's user", loc, quoteTable(loc)))
			} else {
				return nil, fmt.Errorf("%w: reading %s: %w", connectors.ErrUnavailable, loc, err)
			}
		}
	}
	return problems, nil
}

// checkRetained makes sure the server still has every transaction after
// the saved GTID set; otherwise the position is lost (ErrBinlogGone).
func (s *Source) checkRetained(ctx context.Context, saved string) error {
	var lost string
	if s.flavor == flavorMySQL {
		var purged string
		if err := s.db.QueryRowContext(ctx, "SELECT @@gtid_purged").Scan(&purged); err != nil {
			return fmt.Errorf("%w: reading @@gtid_purged: %w", connectors.ErrUnavailable, err)
		}
		l, err := lostMySQL(saved, strings.ReplaceAll(purged, "\n", ""))
		if err != nil {
			return err
		}
		lost = l
	} else {
		var first string
		var size any
		err := s.db.QueryRowContext(ctx, "SHOW BINARY LOGS").Scan(&first, &size)
		if err != nil {
			var me *driver.MySQLError
			if errors.As(err, &me) && me.Number == errSpecificAccess {
				return fmt.Errorf("%w: %s: this user may not list the binary logs: GRANT BINLOG MONITOR ON *.* TO the dsn's user", ErrServerSetup, s.sys.Name)
			}
			return fmt.Errorf("%w: listing the binary logs: %w", connectors.ErrUnavailable, err)
		}
		var oldest sql.NullString
		if err := s.db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, 4)", first).Scan(&oldest); err != nil {
			return fmt.Errorf("%w: reading the position of binary log %s: %w", connectors.ErrUnavailable, first, err)
		}
		l, err := lostMariaDB(saved, oldest.String)
		if err != nil {
			return err
		}
		lost = strings.Join(l, ",")
	}
	if lost != "" {
		return fmt.Errorf("%w: %s: the server no longer has the binary logs after the saved position %s (purged: %s); changes made since are gone. "+
			"Run `remix reset %s` and restart the ingest to copy the tables again, and keep binary logs longer (binlog_expire_logs_seconds) than an ingest may be stopped",
			ErrBinlogGone, s.sys.Name, saved, lost, s.sys.Name)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}
