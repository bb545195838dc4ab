package mysql

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sqlpipe/remix/connectors"
)

// fenceConstraint is the check that refuses an older fence: a stale write
// sets the token to -1, which the check rejects, so the whole transaction
// fails with an error the sink recognizes (MySQL 8.0.16+ and MariaDB 10.2+
// enforce CHECK constraints).
const fenceConstraint = "remix_fence_current"

// fenceDDL creates the fence table.
func fenceDDL(table string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (fence_key VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, "+
		"token BIGINT NOT NULL, CONSTRAINT %s CHECK (token >= 0))", quoteTable(table), fenceConstraint)
}

// openFences makes sure the fence table exists with its check.
func (s *Sink) openFences(ctx context.Context) error {
	name := s.sys.Settings.String(SettingFenceTable)
	if name == "" {
		s.log.Warn("fencing is off (fence_table is empty): a pusher that stalls past its lease may overwrite newer rows with older ones", "system", s.sys.Name)
		return nil
	}
	table, err := qualify(name, s.cfg.DBName)
	if err != nil {
		return fmt.Errorf("%s: fence_table %w", s.sys.PosOf(SettingFenceTable), err)
	}
	if _, err := s.db.ExecContext(ctx, fenceDDL(table)); err != nil {
		return fmt.Errorf("%s: creating the fence table %s: %w (create it as `%s`, or set fence_table to \"\" to run without fencing)",
			s.sys.Name, table, mapError(err), fenceDDL(table))
	}
	var n int
	db, tbl, _ := strings.Cut(table, ".")
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?`,
		db, tbl, fenceConstraint).Scan(&n)
	var me *driver.MySQLError
	if errors.As(err, &me) && me.Number == errNoSuchTable { // MySQL before 8.0.16 has no CHECK_CONSTRAINTS view
		return fmt.Errorf("%s: this server does not enforce CHECK constraints, which fencing needs (MySQL 8.0.16 or MariaDB 10.2 and later); set fence_table to \"\" to run without fencing", s.sys.Name)
	}
	if err != nil {
		return fmt.Errorf("%w: reading the fence table %s: %w", connectors.ErrUnavailable, table, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: fence table %s exists but lacks its check constraint %s (token >= 0); drop the table so it is created again", s.sys.Name, table, fenceConstraint)
	}
	s.fences = quoteTable(table)
	return nil
}

// fenceStatement records the fences of a write, in key order (so two
// writers lock the rows in one order), before the write's own statements:
// a write of an older tenure then fails as a whole.
func (s *Sink) fenceStatement(fences []connectors.Fence) *statement {
	if s.fences == "" || len(fences) == 0 {
		return nil
	}
	sorted := slices.SortedFunc(slices.Values(fences), func(a, b connectors.Fence) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(b.Token, a.Token))
	})
	var args []any
	n := 0
	for i, f := range sorted {
		if i > 0 && f.Key == sorted[i-1].Key {
			continue // the highest token of a key comes first
		}
		args = append(args, f.Key, f.Token)
		n++
	}
	rows := strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ")
	return &statement{
		sql: fmt.Sprintf("INSERT INTO %s (fence_key, token) VALUES %s ON DUPLICATE KEY UPDATE token = IF(token <= VALUES(token), VALUES(token), -1)",
			s.fences, rows),
		args: args,
	}
}
