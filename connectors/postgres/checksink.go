package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// Check looks at the target database without changing anything
// (connectors.Checker): what Open checks (tables, columns, nested paths,
// search-key indexes), the model fields' types against the columns they
// are written to, NOT NULL columns the push mixer leaves out, identity
// columns GENERATED ALWAYS it writes, the role's privileges on the tables,
// and the fence table.
func (s *Sink) Check(ctx context.Context, models map[string]*mixer.Model) (errs, warnings config.Errors) {
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
	problems, err := s.checkTables(ctx)
	if err != nil {
		return fail(err)
	}
	errs = append(errs, problems...)
	e, w := s.checkTypes(models)
	errs, warnings = append(errs, e...), append(warnings, w...)
	w, err = s.checkNotNull(ctx)
	if err != nil {
		return fail(err)
	}
	warnings = append(warnings, w...)
	warnings = append(warnings, s.checkIdentityAlways()...)
	if e, err = s.checkPrivileges(ctx); err != nil {
		return fail(err)
	}
	errs = append(errs, e...)
	if e, err = s.checkFenceTable(ctx); err != nil {
		return fail(err)
	}
	return append(errs, e...), warnings
}

// typeSamples are values of each JSON type a model field may hold, for
// probing a column: a type is refused always when every sample is, and
// sometimes when some are. Strings are left out: whether "12" fits a
// number column depends on the value.
var typeSamples = []struct {
	t       mixer.TypeSet
	samples []any
}{
	{mixer.TypeBoolean, []any{true, false}},
	{mixer.TypeInteger, []any{json.Number("1")}},
	{mixer.TypeNumber, []any{json.Number("1"), json.Number("1.5")}},
	{mixer.TypeObject, []any{map[string]any{}}},
	{mixer.TypeArray, []any{[]any{}}},
}

// checkTypes probes each mapped column with values of the types its model
// field allows: an error when no value the field may hold can be written
// (every record would be dead-lettered), a warning when some cannot.
// Hardcoded values are written as they are.
func (s *Sink) checkTypes(models map[string]*mixer.Model) (errs, warnings config.Errors) {
	for _, model := range s.sys.Push.Models() {
		m := models[model]
		for _, rule := range s.sys.Push.Rules(model) {
			t := s.tables[rule.Location()]
			if t == nil {
				continue
			}
			for _, f := range rule.Fields() {
				c := t.cols[f.Target.Head()]
				if c == nil || f.Target.Len() > 1 {
					continue
				}
				at := []string{"push_mixer", model, rule.Location(), f.Field}
				if f.HasHardcode {
					if _, _, err := pgText(f.Hardcode, c.kind); err != nil {
						errs = append(errs, problemAt(s.sys, at, "the hardcoded value cannot be written to column %s (%s): %v", c.name, c.typ, err))
					}
					continue
				}
				var p *mixer.Property
				if m != nil {
					p = m.Property(f.Field)
				}
				if p == nil || p.Types == 0 {
					continue
				}
				var ok, refused []string
				var why error
				for _, ts := range typeSamples {
					if !p.Types.Has(ts.t) {
						continue
					}
					bad := 0
					for _, v := range ts.samples {
						if _, _, err := pgText(v, c.kind); err != nil {
							bad++
							why = err
						}
					}
					if bad < len(ts.samples) {
						ok = append(ok, ts.t.String())
					}
					if bad > 0 {
						refused = append(refused, ts.t.String())
					}
				}
				switch {
				case len(refused) == 0:
				case len(ok) == 0 && !p.Types.Has(mixer.TypeString):
					errs = append(errs, problemAt(s.sys, at, "model field %s.%s is %s, which column %s (%s) cannot take: every record would be dead-lettered (%v)",
						model, f.Field, p.Types, c.name, c.typ, why))
				default:
					warnings = append(warnings, problemAt(s.sys, at, "model field %s.%s may hold %s values that column %s (%s) cannot take: those records would be dead-lettered (%v)",
						model, f.Field, strings.Join(refused, " or "), c.name, c.typ, why))
				}
			}
		}
	}
	return errs, warnings
}

// checkNotNull finds NOT NULL columns without a default that a push
// location does not write: inserting a new row would fail.
func (s *Sink) checkNotNull(ctx context.Context) (config.Errors, error) {
	var warnings config.Errors
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			loc := rule.Location()
			if s.tables[loc] == nil {
				continue
			}
			written := map[string]bool{}
			for _, f := range rule.Fields() {
				written[f.Target.Head()] = true
			}
			rows, err := s.pool.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0
				AND NOT attisdropped AND attnotnull AND NOT atthasdef AND attidentity = '' AND attgenerated = '' ORDER BY attnum`, quoteQualified(loc))
			var names []string
			if err == nil {
				names, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil {
				return nil, fmt.Errorf("%w: reading the columns of %s: %w", connectors.ErrUnavailable, loc, err)
			}
			var missing []string
			for _, n := range names {
				if !written[n] {
					missing = append(missing, n)
				}
			}
			if len(missing) > 0 {
				warnings = append(warnings, problemAt(s.sys, []string{"push_mixer", model, loc},
					"table %s has NOT NULL column %s without a default, which this push mixer does not write: inserting a new row fails (and is dead-lettered)",
					loc, strings.Join(missing, ", ")))
			}
		}
	}
	return warnings, nil
}

// checkIdentityAlways warns of mapped identity columns GENERATED ALWAYS:
// an INSERT may not write them, so every upsert that may insert is refused
// (SQLSTATE 428C9, retried until the mapping or the column changes); only
// records that update rows already there, by that column as their search
// key, get through.
func (s *Sink) checkIdentityAlways() config.Errors {
	var warnings config.Errors
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			loc := rule.Location()
			t := s.tables[loc]
			if t == nil {
				continue
			}
			for _, f := range rule.Fields() {
				if c := t.cols[f.Target.Head()]; c != nil && c.always {
					warnings = append(warnings, problemAt(s.sys, []string{"push_mixer", model, loc, f.Field},
						"column %s of %s is an identity column GENERATED ALWAYS, which an INSERT may not write: upserts that insert are refused (SQLSTATE 428C9); leave it out of the push mixer or make it GENERATED BY DEFAULT",
						c.name, loc))
				}
			}
		}
	}
	return warnings
}

// checkPrivileges checks that the role may insert, update and delete in
// every push location.
func (s *Sink) checkPrivileges(ctx context.Context) (config.Errors, error) {
	var problems config.Errors
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			loc := rule.Location()
			if s.tables[loc] == nil {
				continue
			}
			var missing []string
			for _, priv := range []string{"INSERT", "UPDATE", "DELETE", "SELECT"} {
				var can bool
				if err := s.pool.QueryRow(ctx, `SELECT has_table_privilege(to_regclass($1), $2)`, quoteQualified(loc), priv).Scan(&can); err != nil {
					return nil, fmt.Errorf("%w: reading the privileges on %s: %w", connectors.ErrUnavailable, loc, err)
				}
				if !can {
					missing = append(missing, priv)
				}
			}
			if len(missing) > 0 {
				problems = append(problems, problemAt(s.sys, []string{"push_mixer", model, loc},
					"this role lacks %s on table %s: GRANT %s ON %s TO the role of the dsn", strings.Join(missing, ", "), loc,
					strings.Join(missing, ", "), quoteQualified(loc)))
			}
		}
	}
	return problems, nil
}

// checkFenceTable checks the fence table as openFences would use it: an
// existing one must have its check and a text key; a missing one needs a
// role that may create it.
func (s *Sink) checkFenceTable(ctx context.Context) (config.Errors, error) {
	loc := s.sys.Settings.String(SettingFenceTable)
	if loc == "" {
		return nil, nil
	}
	key := []string{SettingFenceTable}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, quoteQualified(loc)).Scan(&exists); err != nil {
		return nil, fmt.Errorf("%w: reading the fence table %s: %w", connectors.ErrUnavailable, loc, err)
	}
	if !exists {
		schema, _, _ := strings.Cut(loc, ".")
		var can bool
		err := s.pool.QueryRow(ctx, `SELECT COALESCE(has_schema_privilege(to_regnamespace($1), 'CREATE'), false)`, quoteIdent(schema)).Scan(&can)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the privileges on schema %s: %w", connectors.ErrUnavailable, schema, err)
		}
		if !can {
			return config.Errors{problemAt(s.sys, key, "fence table %s does not exist and this role may not create it in schema %s: create it once as "+
				"CREATE TABLE %s (fence_key text PRIMARY KEY, token bigint NOT NULL CONSTRAINT %s CHECK (token >= 0)), or set fence_table to \"\"",
				loc, schema, quoteQualified(loc), fenceConstraint)}, nil
		}
		return nil, nil
	}
	has, err := s.hasFenceCheck(ctx, loc)
	if err != nil {
		return nil, err
	}
	if !has {
		return config.Errors{problemAt(s.sys, key, "fence table %s exists but lacks its check constraint %s (token >= 0); drop the table so it is created again", loc, fenceConstraint)}, nil
	}
	if err := s.checkFenceKey(ctx, loc); err != nil {
		return config.Errors{problemAt(s.sys, key, "%v", err)}, nil
	}
	return nil, nil
}
