package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// Two-way sync. A table this system both reads (receive mixer) and is
// written (push mixer) gets changes made elsewhere while its own users
// change it too. The sink then:
//
//   - marks each write with a replication origin named for the system the
//     change was first made in (originName), in a transaction whose commit
//     timestamp is the change's own commit time (pg_replication_origin_
//     xact_setup): the source reading this database tells those changes
//     apart (so they go back to no system they came from), and every row
//     keeps the commit time of the change that last wrote it
//     (track_commit_timestamp);
//   - applies a change only if it is at least as new as the row
//     (pg_xact_commit_timestamp(xmin) <= the change's commit time): the last
//     writer wins, by source commit time, on both sides alike;
//   - keeps a tombstone for every row deleted from such a table (a trigger,
//     so local deletes count too) and does not bring a row back for a change
//     older than its deletion.
//
// Decision record: docs/decisions/2026-12-05-two-way.md.

// tombstoneTable is the name of the tombstone table, in the fence table's
// schema (public by default).
const tombstoneTable = "remix_tombstones"

// tombstoneDays is how long a tombstone is kept: a change older than that
// can bring a deleted row back.
const tombstoneDays = 7

// twoWay is what the sink keeps for its two-way tables.
type twoWay struct {
	tombstones string // quoted schema.table
	mu         sync.Mutex
	origins    map[string]bool // replication origins known to exist
}

// twoWayLocations lists the push locations this system also reads.
func (s *Sink) twoWayLocations() []string {
	if s.sys.Receive == nil {
		return nil
	}
	read := map[string]bool{}
	for _, loc := range s.sys.Receive.Locations() {
		read[loc] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			if loc := rule.Location(); read[loc] && !seen[loc] {
				seen[loc] = true
				out = append(out, loc)
			}
		}
	}
	return out
}

// openTwoWay prepares the two-way tables: the server keeps commit
// timestamps, the role may use replication origins, and each table has the
// tombstone trigger on its key column.
func (s *Sink) openTwoWay(ctx context.Context) error {
	locs := s.twoWayLocations()
	if len(locs) == 0 {
		return nil
	}
	var track string
	var originOK bool
	err := s.pool.QueryRow(ctx, `SELECT current_setting('track_commit_timestamp'),
		has_function_privilege('pg_replication_origin_session_setup(text)', 'EXECUTE')
		AND has_function_privilege('pg_replication_origin_xact_setup(pg_lsn, timestamptz)', 'EXECUTE')`).Scan(&track, &originOK)
	if err != nil {
		return fmt.Errorf("%w: %s: reading the server's settings: %w", connectors.ErrUnavailable, s.sys.Name, err)
	}
	if track != "on" {
		return fmt.Errorf("%s is both a source and a target of %s: two-way sync keeps row versions in commit timestamps, so the server needs track_commit_timestamp = on (postgresql.conf, then a restart)",
			s.sys.Name, strings.Join(locs, ", "))
	}
	if !originOK {
		return fmt.Errorf("%s is both a source and a target of %s: two-way sync marks its writes with replication origins; grant the role EXECUTE on pg_replication_origin_create, pg_replication_origin_session_setup, pg_replication_origin_session_reset and pg_replication_origin_xact_setup (or use a superuser)",
			s.sys.Name, strings.Join(locs, ", "))
	}
	schema := "public"
	if loc := s.sys.Settings.String(SettingFenceTable); loc != "" {
		schema, _, _ = strings.Cut(loc, ".")
	}
	tw := &twoWay{tombstones: quoteIdent(schema) + "." + quoteIdent(tombstoneTable), origins: map[string]bool{}}
	fn := quoteIdent(schema) + "." + quoteIdent("remix_tombstone")
	ddl := []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (location text NOT NULL, key text NOT NULL, xid xid NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (location, key))`, tw.tombstones),
		fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE k text;
BEGIN
  EXECUTE format('SELECT ($1).%%I::text', TG_ARGV[0]) USING OLD INTO k;
  INSERT INTO %s (location, key, xid) VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, k, (txid_current() %% 4294967296)::text::xid)
  ON CONFLICT (location, key) DO UPDATE SET xid = EXCLUDED.xid, at = now();
  RETURN NULL;
END $$`, fn, tw.tombstones),
		fmt.Sprintf(`DELETE FROM %s WHERE at < now() - interval '%d days'`, tw.tombstones, tombstoneDays),
	}
	for _, q := range ddl {
		if _, err := s.pool.Exec(ctx, q); err != nil && !isDuplicateObject(err) {
			return fmt.Errorf("%s: preparing two-way sync (%s): %w", s.sys.Name, strings.SplitN(q, "\n", 2)[0], mapError(err))
		}
	}
	for _, loc := range locs {
		t := s.tables[loc]
		if t == nil {
			continue // reported by the table checks
		}
		key := s.tombstoneKey(loc)
		if key == "" {
			return fmt.Errorf("%s: two-way table %s has no search key column to keep tombstones by", s.sys.Name, loc)
		}
		t.lww, t.tombKey = true, key
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = 'remix_tombstone')`,
			quoteQualified(loc)).Scan(&exists); err != nil {
			return fmt.Errorf("%w: reading the triggers of %s: %w", connectors.ErrUnavailable, loc, err)
		}
		if !exists {
			q := fmt.Sprintf(`CREATE TRIGGER remix_tombstone AFTER DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s(%s)`, quoteQualified(loc), fn, quoteLiteral(key))
			if _, err := s.pool.Exec(ctx, q); err != nil && !isDuplicateObject(err) {
				return fmt.Errorf("%s: creating the tombstone trigger of %s: %w (run `%s` as the table's owner)", s.sys.Name, loc, mapError(err), q)
			}
		}
	}
	s.twoWay = tw
	return nil
}

// tombstoneKey is the column a two-way table's tombstones are kept by: the
// first search key (in file order) of a rule writing the table.
func (s *Sink) tombstoneKey(loc string) string {
	for _, model := range s.sys.Push.Models() {
		for _, rule := range s.sys.Push.Rules(model) {
			if rule.Location() != loc {
				continue
			}
			for _, f := range rule.Fields() {
				if f.SearchKey && f.Target.Len() == 1 {
					return f.Target.Head()
				}
			}
		}
	}
	return ""
}

func isDuplicateObject(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "42P07" || pgErr.Code == "23505")
}

// run is a stretch of a batch's records made in one system at one commit
// time: one transaction, under that system's replication origin.
type run struct {
	system string
	at     time.Time
	recs   []mixer.TargetRecord
}

// runs cuts records into runs, keeping their order.
func runs(recs []mixer.TargetRecord) []run {
	var out []run
	start := 0
	for i := 1; i <= len(recs); i++ {
		if i < len(recs) && recs[i].Origin.System == recs[start].Origin.System && recs[i].Origin.CommitTime.Equal(recs[start].Origin.CommitTime) {
			continue
		}
		out = append(out, run{system: recs[start].Origin.System, at: recs[start].Origin.CommitTime, recs: recs[start:i]})
		start = i
	}
	return out
}

// writeTwoWay writes a batch that touches two-way tables: one transaction
// per run, each under the replication origin of the run's system with the
// run's commit time, all in one round trip. A run that fails leaves the
// runs before it committed; they are written again when the batch is
// retried, which the last-writer rule makes harmless.
func (s *Sink) writeTwoWay(ctx context.Context, recs []mixer.TargetRecord, fences []connectors.Fence) error {
	rs := runs(recs)
	for _, r := range rs {
		if err := s.ensureOrigin(ctx, r.system); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_replication_origin_session_reset() WHERE pg_replication_origin_session_is_setup()`)
	offset := 0
	queued := 0
	for _, r := range rs {
		at := r.at
		if at.IsZero() {
			at = time.Now()
		}
		if r.system != "" {
			b.Queue(`SELECT pg_replication_origin_session_setup($1)`, originName(r.system))
		}
		b.Queue(`BEGIN`)
		if r.system != "" {
			b.Queue(`SELECT pg_replication_origin_xact_setup('0/0', $1)`, at)
		}
		s.queueFences(b, fences)
		before := b.Len()
		if err := s.plan(r.recs, b, at); err != nil {
			var re *connectors.RecordError
			if errors.As(err, &re) {
				re.Index += offset
			}
			return err
		}
		queued += b.Len() - before
		b.Queue(`COMMIT`)
		if r.system != "" {
			b.Queue(`SELECT pg_replication_origin_session_reset()`)
		}
		offset += len(r.recs)
	}
	if queued == 0 {
		return nil
	}
	// A failed run leaves its session's origin set on its connection; the
	// next write there starts by resetting it.
	return s.send(ctx, b)
}

// ensureOrigin creates the replication origin of a system once.
func (s *Sink) ensureOrigin(ctx context.Context, system string) error {
	if system == "" {
		return nil
	}
	tw := s.twoWay
	tw.mu.Lock()
	known := tw.origins[system]
	tw.mu.Unlock()
	if known {
		return nil
	}
	_, err := s.pool.Exec(ctx, `SELECT pg_replication_origin_create($1) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1)`, originName(system))
	if err != nil && !isDuplicateObject(err) {
		return fmt.Errorf("%w: creating the replication origin %s: %w", connectors.ErrUnavailable, originName(system), err)
	}
	tw.mu.Lock()
	tw.origins[system] = true
	tw.mu.Unlock()
	return nil
}

// lwwDeleteSQL deletes rows by key unless the row is newer than the
// change ($2, the run's commit time).
func (s *Sink) lwwDeleteSQL(t *table, keyCol string) string {
	c := t.cols[keyCol]
	return fmt.Sprintf(`DELETE FROM %s WHERE %s = ANY($1::text[]::%s[]) AND %s`, t.quoted, quoteIdent(keyCol), c.keyType, notNewer("xmin", "$2"))
}

// notNewer is the condition that the row whose xmin is given was last
// written no later than at (or at an unknown time: frozen or very old).
func notNewer(xmin, at string) string {
	return fmt.Sprintf("(pg_xact_commit_timestamp(%s) IS NULL OR pg_xact_commit_timestamp(%s) <= %s::timestamptz)", xmin, xmin, at)
}

// lwwConditions are what an upsert into a two-way table adds: rows are not
// brought back for a change older than their deletion (where), and an
// existing row is changed only by a change at least as new (conflict).
func (s *Sink) lwwConditions(t *table, keyAlias, at string) (where, conflict string) {
	c := t.cols[t.tombKey]
	where = fmt.Sprintf(` WHERE NOT EXISTS (SELECT 1 FROM %s tb WHERE tb.location = %s AND tb.key = (u.%s::%s)::text AND pg_xact_commit_timestamp(tb.xid) > %s::timestamptz)`,
		s.twoWay.tombstones, quoteLiteral(t.loc), keyAlias, c.keyType, at)
	return where, " WHERE " + notNewer("t.xmin", at)
}
