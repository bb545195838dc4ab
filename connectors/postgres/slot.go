package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
)

// A source's slot and publication live on the server, longer than any
// ingest process and apart from Redis. Before using either, a source makes
// sure it is its own: a slot confirms what its reader reads, so a second
// reader takes the first one's changes for good, and a publication's
// tables are what every reader of it receives.
//
// The proof is a mark: the publication's comment, a JSON object naming the
// source, its slot and a claim, a random token the source also keeps in its
// checkpoint in Redis. A mark with another source's name is another
// source's; a mark with this name and another claim is another Remix
// deployment's (another Redis or namespace) reading the same database
// under the same system name, or this deployment's Redis lost the
// checkpoint. Objects an earlier version made carry no mark: the source
// adopts them (and marks them) when its checkpoint names the slot. A mark
// written by hand with the source's name only ({"remix_source": "shop"})
// hands a publication made by an administrator, and the slot it names, to
// that source.

// mark is the comment a source writes on its publication.
type mark struct {
	Source string `json:"remix_source"`
	Slot   string `json:"slot,omitempty"`
	Claim  string `json:"claim,omitempty"`
}

// parseMark reads a publication comment; nil when it is not a mark.
func parseMark(comment string) *mark {
	var m mark
	if !strings.Contains(comment, `"remix_source"`) || json.Unmarshal([]byte(comment), &m) != nil || m.Source == "" {
		return nil
	}
	return &m
}

func (m mark) text() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// newClaim returns a fresh claim token.
func newClaim() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serverView is what the source's database holds of its names.
type serverView struct {
	pubExists bool
	pubMark   *mark
	slotMarks []pubMark // marks of this database's publications that name the slot
}

type pubMark struct {
	pub string
	m   *mark
}

// readView reads the marks of the database's publications.
func readView(ctx context.Context, pool *pgxpool.Pool, slot, pub string) (serverView, error) {
	var v serverView
	rows, err := pool.Query(ctx, `SELECT pubname, COALESCE(obj_description(oid, 'pg_publication'), '') FROM pg_publication ORDER BY pubname`)
	if err != nil {
		return v, fmt.Errorf("%w: reading the publications: %w", connectors.ErrUnavailable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, comment string
		if err := rows.Scan(&name, &comment); err != nil {
			return v, err
		}
		m := parseMark(comment)
		if name == pub {
			v.pubExists, v.pubMark = true, m
		}
		if m != nil && m.Slot == slot {
			v.slotMarks = append(v.slotMarks, pubMark{pub: name, m: m})
		}
	}
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("%w: reading the publications: %w", connectors.ErrUnavailable, err)
	}
	return v, nil
}

// ours reports whether a mark is this source's, given the claim its
// checkpoint holds ("" when none).
func (s *Source) ours(m *mark, claim string) bool {
	return m.Source == s.sys.Name && (m.Claim == "" || m.Claim == claim)
}

// checkOwnership refuses (ErrNotOwner) a publication or a slot that exists
// but is not this source's. slotExists says whether the slot is on the
// server (slotState checked it is a logical slot of this database).
func (s *Source) checkOwnership(st *state, slotExists bool, v serverView) error {
	claim := ""
	if st != nil {
		claim = st.Claim
	}
	recorded := st != nil && st.Slot == s.slot // the checkpoint says this source read this slot
	if v.pubExists {
		switch {
		case v.pubMark != nil && !s.ours(v.pubMark, claim):
			return s.notOwner(fmt.Sprintf("publication %s", s.pub), s.pub, v.pubMark, claim)
		case v.pubMark == nil && !recorded:
			return fmt.Errorf("%w: %s: publication %s exists without a Remix mark, and this source's checkpoint does not name its slot: "+
				"it was not made for this source (another tool's, or made by hand), and Remix will not add tables to it. "+
				"Set publication_name to a name of this source's own; or, if it was made for this source, say so: COMMENT ON PUBLICATION %s IS %s",
				ErrNotOwner, s.sys.Name, s.pub, quoteIdent(s.pub), quoteLiteral(mark{Source: s.sys.Name}.text()))
		}
	}
	marked := false
	for _, pm := range v.slotMarks {
		if !s.ours(pm.m, claim) {
			return s.notOwner(fmt.Sprintf("replication slot %s (publication %s says so)", s.slot, pm.pub), pm.pub, pm.m, claim)
		}
		marked = true
	}
	if slotExists && !recorded && !marked {
		return fmt.Errorf("%w: %s: replication slot %s exists, but this source's checkpoint does not name it and no Remix mark in this database claims it: "+
			"reading it would confirm, and so discard, changes its owner still waits for. Set slot_name to a name of this source's own; "+
			"or, if the slot was made for this source, say so: COMMENT ON PUBLICATION %s IS %s",
			ErrNotOwner, s.sys.Name, s.slot, quoteIdent(s.pub), quoteLiteral(mark{Source: s.sys.Name, Slot: s.slot}.text()))
	}
	return nil
}

// notOwner describes what marks an object as another's, and the way out.
func (s *Source) notOwner(what, pub string, m *mark, claim string) error {
	if m.Source != s.sys.Name {
		way := fmt.Sprintf("give %s a slot_name and a publication_name of its own", s.sys.Name)
		if s.slot == legacyName(s.sys.Name) && s.slot != DefaultName(s.sys.Name) {
			way += fmt.Sprintf(", or run `remix reset %s`: it leaves %s to %s, and %s starts over on %s and copies its tables again",
				s.sys.Name, s.slot, m.Source, s.sys.Name, DefaultName(s.sys.Name))
		}
		return fmt.Errorf("%w: %s: %s belongs to Remix source %s: two sources on one slot confirm each other's changes, which are then lost; %s",
			ErrNotOwner, s.sys.Name, what, m.Source, way)
	}
	held := "no claim"
	if claim != "" {
		held = "claim " + claim
	}
	return fmt.Errorf("%w: %s: %s belongs to source %s with claim %s, and this deployment's checkpoint holds %s: "+
		"either another Remix deployment (another Redis or namespace) reads this database under the same system name "+
		"(give this one a slot_name and a publication_name of its own), or this deployment's Redis lost the checkpoint "+
		"(run `remix reset %s`: it drops the slot, and the next start copies the tables again)",
		ErrNotOwner, s.sys.Name, what, m.Source, m.Claim, held, s.sys.Name)
}

// followLegacyName keeps a source on the slot and publication an earlier
// version derived from its name when its checkpoint names that slot, so an
// upgrade neither copies the tables again nor leaves the old slot holding
// WAL. Names set in the configuration always win. `remix reset` moves the
// source to DefaultName.
func (s *Source) followLegacyName(st *state) {
	old := legacyName(s.sys.Name)
	if st == nil || st.Slot != old || old == DefaultName(s.sys.Name) || s.sys.Settings.Has(SettingSlotName) {
		return
	}
	s.slot = old
	if !s.sys.Settings.Has(SettingPublicationName) {
		s.pub = old
	}
	s.log.Info("keeping the slot and publication named by an earlier version; `remix reset` moves the source to the new names",
		"slot", s.slot, "publication", s.pub, "new_name", DefaultName(s.sys.Name))
}

// ensureClaim gives the checkpoint a claim, saved before any mark carries
// it: a mark with this source's claim is then always backed by the
// checkpoint.
func (s *Source) ensureClaim(ctx context.Context, st *state) (*state, error) {
	if st == nil {
		st = &state{}
	}
	if st.Claim == "" {
		st.Claim = newClaim()
		if err := s.saveState(ctx, st); err != nil {
			return nil, err
		}
	}
	s.claim = st.Claim
	return st, nil
}

// ensurePublication creates the publication for the mapped tables with its
// mark, or adds the tables it lacks and marks it, and checks it publishes
// every kind of change.
func (s *Source) ensurePublication(ctx context.Context, v serverView) error {
	want := mark{Source: s.sys.Name, Slot: s.slot, Claim: s.claim}.text()
	quoted := make([]string, 0, len(s.tables))
	for loc := range s.tables {
		quoted = append(quoted, quoteQualified(loc))
	}
	sort.Strings(quoted)
	if !v.pubExists {
		// One transaction: a publication is never there without its mark.
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", quoteIdent(s.pub), strings.Join(quoted, ", "))); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, fmt.Sprintf("COMMENT ON PUBLICATION %s IS %s", quoteIdent(s.pub), quoteLiteral(want)))
			return err
		})
		if err != nil {
			return fmt.Errorf("creating publication %s: %w", s.pub, err)
		}
		s.log.Info("publication created", "publication", s.pub, "tables", len(quoted))
		return nil
	}
	var all, ins, upd, del, trunc bool
	err := s.pool.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1`, s.pub).
		Scan(&all, &ins, &upd, &del, &trunc)
	if err != nil {
		return fmt.Errorf("%w: reading publication %s: %w", connectors.ErrUnavailable, s.pub, err)
	}
	if !ins || !upd || !del || !trunc {
		return fmt.Errorf("%s: publication %s does not publish every kind of change (insert %v, update %v, delete %v, truncate %v); "+
			"ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate')", s.sys.Name, s.pub, ins, upd, del, trunc, quoteIdent(s.pub))
	}
	if v.pubMark == nil || *v.pubMark != (mark{Source: s.sys.Name, Slot: s.slot, Claim: s.claim}) {
		if _, err := s.pool.Exec(ctx, fmt.Sprintf("COMMENT ON PUBLICATION %s IS %s", quoteIdent(s.pub), quoteLiteral(want))); err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				return fmt.Errorf("marking publication %s: %w", s.pub, err)
			}
			// Not its owner (made by an administrator): the checkpoint, or
			// the administrator's mark, still says whose it is.
			s.log.Warn("cannot mark the publication (this role does not own it); other sources cannot see it is taken", "publication", s.pub)
		}
	}
	if all {
		return nil
	}
	for loc := range s.tables {
		var in bool
		schema, table, _ := strings.Cut(loc, ".")
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)`,
			s.pub, schema, table).Scan(&in); err != nil {
			return err
		}
		if !in {
			if _, err := s.pool.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", quoteIdent(s.pub), quoteQualified(loc))); err != nil {
				return fmt.Errorf("adding %s to publication %s: %w", loc, s.pub, err)
			}
			s.log.Info("table added to the publication", "publication", s.pub, "table", loc)
		}
	}
	return nil
}

// slotState returns the slot's confirmed position, whether it exists, and
// fails when it exists but cannot be used.
func (s *Source) slotState(ctx context.Context) (pglogrepl.LSN, bool, error) {
	var kind, plugin, walStatus, db string
	var here bool
	var confirmed *string
	err := s.pool.QueryRow(ctx, `SELECT slot_type, COALESCE(plugin, ''), COALESCE(wal_status, ''), confirmed_flush_lsn::text,
		COALESCE(database, ''), COALESCE(database = current_database(), false) FROM pg_replication_slots WHERE slot_name = $1`, s.slot).
		Scan(&kind, &plugin, &walStatus, &confirmed, &db, &here)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil { // not an answer about the slot: never read as "it is gone"
		return 0, false, fmt.Errorf("%w: reading the state of slot %s: %w", connectors.ErrUnavailable, s.slot, err)
	}
	if kind != "logical" || !here {
		where := "a physical slot"
		if kind == "logical" {
			where = "a slot of database " + db
		}
		return 0, true, fmt.Errorf("%w: %s: replication slot %s is %s (slot names are shared by every database of a server); set slot_name to a name of this source's own",
			ErrNotOwner, s.sys.Name, s.slot, where)
	}
	if plugin != "pgoutput" {
		return 0, true, fmt.Errorf("%w: %s: replication slot %s uses plugin %s, not pgoutput; set slot_name to a name of this source's own", ErrNotOwner, s.sys.Name, s.slot, plugin)
	}
	if walStatus == "lost" {
		return 0, true, fmt.Errorf("%w: %s: replication slot %s was invalidated (wal_status lost, see max_slot_wal_keep_size): the WAL it needed is gone. "+
			"Run `remix reset %s` to drop it and copy the tables again", ErrSlotLost, s.sys.Name, s.slot, s.sys.Name)
	}
	if confirmed == nil {
		return 0, true, fmt.Errorf("%s: replication slot %s has no confirmed position", s.sys.Name, s.slot)
	}
	lsn, err := pglogrepl.ParseLSN(*confirmed)
	return lsn, true, err
}

// Reset forgets a source's replication state so the next start takes a new
// snapshot: it drops its slot (ending a session that holds it) when the
// slot is this source's, leaves the publication to the next start (marked
// with the source's name only, so the next claim takes it), and clears the
// checkpoint. A slot another source's mark claims is never dropped. Used
// by `remix reset`.
func Reset(ctx context.Context, sys *config.System, cps connectors.Checkpoints) error {
	src, err := NewSource(sys, connectors.SourceDeps{Checkpoints: cps})
	if err != nil {
		return err
	}
	s := src.(*Source)
	pool, err := newPool(ctx, sys, "remix-reset")
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := s.loadState(ctx)
	if err != nil {
		return err
	}
	s.followLegacyName(st)
	v, err := readView(ctx, pool, s.slot, s.pub)
	if err != nil {
		return err
	}
	drop := st != nil && st.Slot == s.slot
	for _, pm := range v.slotMarks {
		drop = drop || pm.m.Source == sys.Name
	}
	for _, pm := range v.slotMarks {
		drop = drop && pm.m.Source == sys.Name
	}
	if drop {
		_, _ = pool.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, s.slot)
		if _, err := pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, s.slot); err != nil {
			return fmt.Errorf("dropping slot %s: %w", s.slot, err)
		}
	}
	_, next := names(sys)
	switch {
	case !v.pubExists || v.pubMark != nil && v.pubMark.Source != sys.Name || v.pubMark == nil && !drop:
		// Not this source's to touch.
	case s.pub == next:
		if _, err := pool.Exec(ctx, fmt.Sprintf("COMMENT ON PUBLICATION %s IS %s", quoteIdent(s.pub), quoteLiteral(mark{Source: sys.Name}.text()))); err != nil {
			return fmt.Errorf("marking publication %s: %w", s.pub, err)
		}
	case v.pubMark != nil:
		// The earlier version's publication, this source's alone: the next
		// start uses the new name.
		if _, err := pool.Exec(ctx, "DROP PUBLICATION IF EXISTS "+quoteIdent(s.pub)); err != nil {
			return fmt.Errorf("dropping publication %s: %w", s.pub, err)
		}
	}
	return cps.Save(ctx, checkpointName, "")
}
