package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// Check looks at the source database without changing anything
// (connectors.Checker): what Open checks (logical WAL, the mapped tables,
// their columns and keys), the columns' types against the model fields
// they fill, the replication connection, read access to the tables, and
// whether the slot and publication are free to use or this source's own.
// The checkpoint is read when the source was given checkpoints.
func (s *Source) Check(ctx context.Context, _ map[string]*mixer.Model) (errs, warnings config.Errors) {
	pool, err := newPool(ctx, s.sys, "remix-check")
	if err != nil {
		return config.Errors{problemAt(s.sys, []string{SettingDSN}, "cannot connect: %v", err)}, nil
	}
	s.pool = pool
	defer func() {
		pool.Close()
		s.pool = nil
	}()
	fail := func(err error) (config.Errors, config.Errors) {
		return append(errs, problemAt(s.sys, nil, "%v", err)), warnings
	}
	var level string
	if err := pool.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return fail(fmt.Errorf("reading wal_level: %w", err))
	}
	if level != "logical" {
		errs = append(errs, problemAt(s.sys, []string{SettingDSN}, "wal_level is %q; logical replication needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)", level))
	}
	problems, err := s.checkTables(ctx)
	if err != nil {
		return fail(err)
	}
	errs = append(errs, problems...)
	more, err := s.checkTypes(ctx)
	if err != nil {
		return fail(err)
	}
	errs = append(errs, more...)
	if more, err = s.checkAccess(ctx); err != nil {
		return fail(err)
	}
	errs = append(errs, more...)
	if more, err = s.checkNames(ctx); err != nil {
		return fail(err)
	}
	errs = append(errs, more...)
	replKey := SettingReplicationDSN
	if !s.sys.Settings.Has(SettingReplicationDSN) {
		replKey = SettingDSN
	}
	if conn, err := s.connectReplication(ctx); err != nil {
		errs = append(errs, problemAt(s.sys, []string{replKey}, "%v", err))
	} else {
		if _, err := pglogrepl.IdentifySystem(ctx, conn); err != nil {
			errs = append(errs, problemAt(s.sys, []string{replKey}, "replication connection: %v", err))
		}
		_ = conn.Close(ctx)
	}
	return errs, warnings
}

// sampleOf is a value of the kind a source column of the type produces,
// for checking the model field it fills; nil for types whose values vary
// in kind (text can hold a number) or that any field takes (json).
func sampleOf(oid uint32) any {
	switch kindOf(oid) {
	case colInteger, colNumeric, colFloat:
		return json.Number("1")
	case colBool:
		return true
	case colTimestamptz, colTimestamp:
		return "2024-01-02T03:04:05Z"
	}
	return nil
}

// checkTypes checks each mapped column's type against the model field it
// fills: a column whose every value the field refuses would dead-letter
// every change.
func (s *Source) checkTypes(ctx context.Context) (config.Errors, error) {
	var problems config.Errors
	for _, loc := range s.locations() {
		rows, err := s.pool.Query(ctx, `SELECT attname, atttypid, format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, quoteQualified(loc))
		if err != nil {
			return nil, fmt.Errorf("%w: reading the columns of %s: %w", connectors.ErrUnavailable, loc, err)
		}
		type col struct {
			oid uint32
			typ string
		}
		cols := map[string]col{}
		for rows.Next() {
			var name string
			var c col
			if err := rows.Scan(&name, &c.oid, &c.typ); err != nil {
				rows.Close()
				return nil, err
			}
			cols[name] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("%w: reading the columns of %s: %w", connectors.ErrUnavailable, loc, err)
		}
		for _, rule := range s.sys.Receive.Rules(loc) {
			model := rule.Model()
			for _, f := range rule.Fields() {
				c, ok := cols[f.Source.Head()]
				if f.HasHardcode || f.Source.Len() > 1 || !ok {
					continue
				}
				p := model.Property(f.Field)
				sample := sampleOf(c.oid)
				if p == nil || p.Types == 0 || sample == nil {
					continue
				}
				if _, err := mixer.ToModel(sample, p); err != nil {
					problems = append(problems, problemAt(s.sys, []string{"receive_mixer", loc, model.Title, f.Source.String()},
						"column %s of %s is %s, but model field %s.%s is %s: every change would be dead-lettered (%v)",
						f.Source.Head(), loc, c.typ, model.Title, f.Field, p.Types, err))
				}
			}
		}
	}
	return problems, nil
}

// checkAccess checks that the role may read every mapped table (the
// snapshot and primary-key changes read them).
func (s *Source) checkAccess(ctx context.Context) (config.Errors, error) {
	var problems config.Errors
	var role string
	if err := s.pool.QueryRow(ctx, `SELECT current_user`).Scan(&role); err != nil {
		return nil, fmt.Errorf("%w: reading the role: %w", connectors.ErrUnavailable, err)
	}
	for _, loc := range s.locations() {
		var exists, can bool
		err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, COALESCE(has_table_privilege(to_regclass($1), 'SELECT'), false)`,
			quoteQualified(loc)).Scan(&exists, &can)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the privileges on %s: %w", connectors.ErrUnavailable, loc, err)
		}
		if exists && !can {
			problems = append(problems, problemAt(s.sys, []string{"receive_mixer", loc},
				"this role may not read table %s (the snapshot reads it): GRANT SELECT ON %s TO %s", loc, quoteQualified(loc), quoteIdent(role)))
		}
	}
	return problems, nil
}

// checkNames checks the slot and publication as Open would use them: an
// existing slot must be a usable logical slot of this database, and both
// must be this source's own (see checkOwnership); a missing slot needs a
// free place, a missing publication a role that may create it for the
// mapped tables, an existing one a role that may add the tables it lacks.
func (s *Source) checkNames(ctx context.Context) (config.Errors, error) {
	var problems config.Errors
	slotKey, pubKey := []string{SettingSlotName}, []string{SettingPublicationName}
	if !s.sys.Settings.Has(SettingSlotName) {
		slotKey = nil
	}
	if !s.sys.Settings.Has(SettingPublicationName) {
		pubKey = nil
	}
	var st *state
	if s.deps.Checkpoints != nil {
		loaded, err := s.loadState(ctx)
		if err != nil {
			return nil, err
		}
		st = loaded
		s.followLegacyName(st)
	}
	_, exists, err := s.slotState(ctx)
	switch {
	case errors.Is(err, connectors.ErrUnavailable):
		return nil, err
	case err != nil:
		problems = append(problems, problemAt(s.sys, slotKey, "%v", err))
	case !exists:
		var used, most int
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots), current_setting('max_replication_slots')::int`).Scan(&used, &most); err != nil {
			return nil, fmt.Errorf("%w: reading the replication slots: %w", connectors.ErrUnavailable, err)
		}
		if used >= most {
			problems = append(problems, problemAt(s.sys, slotKey, "the server has no free replication slot for %s (%d of max_replication_slots %d in use)", s.slot, used, most))
		}
	}
	view, err := readView(ctx, s.pool, s.slot, s.pub)
	if err != nil {
		return nil, err
	}
	if s.deps.Checkpoints != nil { // whose they are is known only with the checkpoint
		if err := s.checkOwnership(st, exists, view); err != nil {
			problems = append(problems, problemAt(s.sys, pubKey, "%v", err))
		}
	}
	if !view.pubExists {
		var create bool
		if err := s.pool.QueryRow(ctx, `SELECT has_database_privilege(current_database(), 'CREATE')`).Scan(&create); err != nil {
			return nil, fmt.Errorf("%w: reading the privileges on the database: %w", connectors.ErrUnavailable, err)
		}
		if !create {
			problems = append(problems, problemAt(s.sys, pubKey, "this role may not create publication %s (it needs CREATE on the database); create it as an administrator", s.pub))
		}
	}
	var notOwned []string
	for _, loc := range s.locations() {
		var owns, in bool
		schema, table, _ := strings.Cut(loc, ".")
		err := s.pool.QueryRow(ctx, `SELECT COALESCE((SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass($1)), true),
			EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $2 AND schemaname = $3 AND tablename = $4)
			OR EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2 AND puballtables)`, quoteQualified(loc), s.pub, schema, table).Scan(&owns, &in)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the owner of %s: %w", connectors.ErrUnavailable, loc, err)
		}
		if !owns && !in {
			notOwned = append(notOwned, loc)
		}
	}
	if len(notOwned) > 0 {
		what := fmt.Sprintf("publication %s lacks %s", s.pub, strings.Join(notOwned, ", "))
		if !view.pubExists {
			what = fmt.Sprintf("publication %s is to be created for %s", s.pub, strings.Join(notOwned, ", "))
		}
		problems = append(problems, problemAt(s.sys, pubKey,
			"%s, and this role cannot add them (only a table's owner can): create the publication, or add them, as their owner (ALTER PUBLICATION %s ADD TABLE %s)",
			what, quoteIdent(s.pub), quoteQualified(notOwned[0])))
	}
	return problems, nil
}
