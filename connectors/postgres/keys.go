package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// keysPage is how many rows ListKeys hands over at a time.
const keysPage = 2000

var (
	_ connectors.KeyLister = (*Source)(nil)
	_ connectors.KeyLister = (*Sink)(nil)
	_ connectors.RowKeyer  = (*Source)(nil)
)

// ListKeys reads the named columns of every row of a source table (see
// connectors.KeyLister).
func (s *Source) ListKeys(ctx context.Context, location string, fields []string, page func([]map[string]any) error) error {
	return listRows(ctx, s.sys, location, fields, page)
}

// ListKeys reads the named columns of every row of a target table (see
// connectors.KeyLister).
func (s *Sink) ListKeys(ctx context.Context, location string, fields []string, page func([]map[string]any) error) error {
	return listRows(ctx, s.sys, location, fields, page)
}

// listRows reads columns of every row of a table in one statement (one
// consistent view), decoded as the snapshot decodes them, and hands them
// over keysPage rows at a time. The rows stream from the server: memory
// holds one page.
func listRows(ctx context.Context, sys *config.System, loc string, cols []string, page func([]map[string]any) error) error {
	if len(cols) == 0 {
		return fmt.Errorf("listing %s of %s: no columns asked for", loc, sys.Name)
	}
	pool, err := newPool(ctx, sys, "remix-reconcile")
	if err != nil {
		return err
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%w: listing %s of %s: %w", connectors.ErrUnavailable, loc, sys.Name, err)
	}
	defer conn.Release()
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quoteIdent(c)
	}
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM " + quoteQualified(loc)
	rr := conn.Conn().PgConn().ExecParams(ctx, q, nil, nil, nil, nil)
	fields := rr.FieldDescriptions()
	rows := make([]map[string]any, 0, keysPage)
	for rr.NextRow() {
		vals := rr.Values()
		row := make(map[string]any, len(vals))
		for i, f := range fields {
			if vals[i] == nil {
				row[f.Name] = nil
				continue
			}
			v, err := decodeText(f.DataTypeOID, vals[i])
			if err != nil {
				rr.Close()
				return fmt.Errorf("%s of %s, column %s: %w", loc, sys.Name, f.Name, err)
			}
			row[f.Name] = v
		}
		rows = append(rows, row)
		if len(rows) == keysPage {
			if err := page(rows); err != nil {
				rr.Close()
				return err
			}
			rows = make([]map[string]any, 0, keysPage)
		}
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("listing %s of %s: %w", loc, sys.Name, err)
	}
	if len(rows) > 0 {
		return page(rows)
	}
	return nil
}

// IdentityFields returns the columns of a source table's replica identity
// (its primary key, or the index of REPLICA IDENTITY USING INDEX): the
// columns its changes' keys are made of.
func (s *Source) IdentityFields(ctx context.Context, location string) ([]string, error) {
	pool, err := newPool(ctx, s.sys, "remix-reconcile")
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return identityColumns(ctx, pool, location)
}

func identityColumns(ctx context.Context, pool *pgxpool.Pool, loc string) ([]string, error) {
	var ident string
	var relid uint32
	err := pool.QueryRow(ctx, `SELECT c.oid, c.relreplident FROM pg_class c WHERE c.oid = to_regclass($1)`, quoteQualified(loc)).Scan(&relid, &ident)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", loc, err)
	}
	cond := "i.indisprimary"
	switch ident {
	case "d", "f":
	case "i":
		cond = "i.indisreplident"
	default:
		return nil, fmt.Errorf("table %s has REPLICA IDENTITY NOTHING: its rows have no identity", loc)
	}
	rows, err := pool.Query(ctx, `SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(n, o) ON true
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n WHERE i.indrelid = $1 AND `+cond+` ORDER BY k.o`, relid)
	if err != nil {
		return nil, fmt.Errorf("reading the key of %s: %w", loc, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the key of %s: %w", loc, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s has no primary key: its rows have no identity", loc)
	}
	return cols, nil
}

// RowKey builds the key the source's changes of a row carry from the
// values of its identity columns, as the stream and the snapshot do.
func (s *Source) RowKey(location string, values []any) (string, error) {
	names := make([]string, len(values))
	fields := make(map[string]any, len(values))
	for i, v := range values {
		names[i] = strconv.Itoa(i)
		fields[names[i]] = v
	}
	return s.rowKey(location, names, fields)
}
