package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/sqlpipe/remix/connectors"
)

// column is a table column as information_schema describes it.
type column struct {
	name       string
	dataType   string // DATA_TYPE, lowercase: int, varchar, datetime, ...
	columnType string // COLUMN_TYPE: bigint(20) unsigned, enum('a','b'), bit(3)
	unsigned   bool
	charset    string // CHARACTER_SET_NAME; "" for other than character types, "binary" for binary strings
	octets     int64  // CHARACTER_OCTET_LENGTH: BINARY(n) values are padded to it
	bits       int    // BIT(n)
	json       bool   // MySQL JSON, or MariaDB's JSON (LONGTEXT with a json_valid check)
	nullable   bool
	hasDefault bool // a default, AUTO_INCREMENT or a generated value
	generated  bool
	index      int
}

// tableInfo is a table's columns and keys.
type tableInfo struct {
	loc    string
	cols   map[string]*column
	order  []*column
	pk     []string        // primary key columns, in order
	unique map[string]bool // columns that alone are the primary key or a unique index
}

var bitsRE = regexp.MustCompile(`^bit\((\d+)\)`)

// querier is a pool or a connection.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadTable reads a table's description; nil when the table does not
// exist.
func loadTable(ctx context.Context, q querier, loc string) (*tableInfo, error) {
	db, table, _ := strings.Cut(loc, ".")
	rows, err := q.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COALESCE(CHARACTER_SET_NAME, ''),
		COALESCE(CHARACTER_OCTET_LENGTH, 0), IS_NULLABLE = 'YES', COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%auto_increment%',
		EXTRA LIKE '%GENERATED%' OR EXTRA LIKE '%VIRTUAL%' OR EXTRA LIKE '%PERSISTENT%' OR EXTRA LIKE '%STORED%'
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the columns of %s: %w", connectors.ErrUnavailable, loc, err)
	}
	t := &tableInfo{loc: loc, cols: map[string]*column{}, unique: map[string]bool{}}
	for rows.Next() {
		c := &column{}
		if err := rows.Scan(&c.name, &c.dataType, &c.columnType, &c.charset, &c.octets, &c.nullable, &c.hasDefault, &c.generated); err != nil {
			rows.Close()
			return nil, err
		}
		c.dataType = strings.ToLower(c.dataType)
		c.columnType = strings.ToLower(c.columnType)
		c.unsigned = strings.Contains(c.columnType, "unsigned")
		c.json = c.dataType == "json"
		c.hasDefault = c.hasDefault || c.generated
		if m := bitsRE.FindStringSubmatch(c.columnType); m != nil {
			c.bits, _ = strconv.Atoi(m[1])
		}
		c.index = len(t.order)
		t.cols[c.name] = c
		t.order = append(t.order, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading the columns of %s: %w", connectors.ErrUnavailable, loc, err)
	}
	if len(t.order) == 0 {
		return nil, nil
	}
	// MariaDB's JSON is LONGTEXT with a json_valid check on the column.
	checks, err := q.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CHECK_CLAUSE LIKE 'json_valid(%'`, db, table)
	if err == nil {
		for checks.Next() {
			var clause string
			if checks.Scan(&clause) == nil {
				name := strings.Trim(strings.TrimSuffix(strings.TrimPrefix(clause, "json_valid("), ")"), "`")
				if c := t.cols[name]; c != nil && strings.HasSuffix(c.dataType, "text") {
					c.json = true
				}
			}
		}
		checks.Close()
	}
	idx, err := q.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME, SUB_PART IS NULL FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, db, table)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the indexes of %s: %w", connectors.ErrUnavailable, loc, err)
	}
	defer idx.Close()
	type index struct {
		cols  []string
		whole bool
	}
	indexes := map[string]*index{}
	var names []string
	for idx.Next() {
		var name, col string
		var whole bool
		if err := idx.Scan(&name, &col, &whole); err != nil {
			return nil, err
		}
		ix := indexes[name]
		if ix == nil {
			ix = &index{whole: true}
			indexes[name] = ix
			names = append(names, name)
		}
		ix.cols = append(ix.cols, col)
		ix.whole = ix.whole && whole
	}
	if err := idx.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading the indexes of %s: %w", connectors.ErrUnavailable, loc, err)
	}
	for _, name := range names {
		ix := indexes[name]
		if name == "PRIMARY" {
			t.pk = ix.cols
		}
		if len(ix.cols) == 1 && ix.whole {
			t.unique[ix.cols[0]] = true
		}
	}
	return t, nil
}

// binary reports whether the column holds bytes rather than text.
func (c *column) binary() bool {
	switch c.dataType {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry", "point", "linestring", "polygon",
		"multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return true
	}
	return c.charset == "binary"
}
