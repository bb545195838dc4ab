package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sqlpipe/remix/connectors"
)

// fenceConstraint is the check that refuses an older fence. A stale write
// sets the token to -1, which the check rejects, so the whole batch (one
// implicit transaction) fails with an error the sink recognizes.
const fenceConstraint = "remix_fence_current"

// openFences makes sure the fence table exists with its check, creating
// it if needed, and prepares the statement that records a write's fences.
func (s *Sink) openFences(ctx context.Context) error {
	loc := s.sys.Settings.String(SettingFenceTable)
	if loc == "" {
		s.log.Warn("fencing is off (fence_table is empty): a pusher that stalls past its lease may overwrite newer rows with older ones", "system", s.sys.Name)
		return nil
	}
	exists, err := s.hasFenceCheck(ctx, loc)
	if err != nil {
		return err
	}
	if !exists {
		ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (fence_key text PRIMARY KEY, token bigint NOT NULL CONSTRAINT %s CHECK (token >= 0))`,
			quoteQualified(loc), fenceConstraint)
		if _, err := s.pool.Exec(ctx, ddl); err != nil {
			var pgErr *pgconn.PgError
			// Two pushers creating it at once: one wins, the other sees it.
			if !errors.As(err, &pgErr) || pgErr.Code != "42P07" && pgErr.Code != "23505" {
				return fmt.Errorf("%s: creating the fence table %s: %w (create it as `%s`, or set fence_table to \"\" to run without fencing)",
					s.sys.Name, loc, mapError(err), ddl)
			}
		}
		if exists, err = s.hasFenceCheck(ctx, loc); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%s: fence table %s exists but lacks its check constraint %s (token >= 0); drop the table so it is created again", s.sys.Name, loc, fenceConstraint)
		}
	}
	if err := s.checkFenceKey(ctx, loc); err != nil {
		return err
	}
	s.fenceSQL = fmt.Sprintf(`INSERT INTO %s AS f (fence_key, token) SELECT * FROM unnest($1::text[], $2::int8[])
ON CONFLICT (fence_key) DO UPDATE SET token = CASE WHEN f.token <= EXCLUDED.token THEN EXCLUDED.token ELSE -1 END`, quoteQualified(loc))
	return nil
}

// hasFenceCheck reports whether the fence table exists with its check.
func (s *Sink) hasFenceCheck(ctx context.Context, loc string) (bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2`,
		quoteQualified(loc), fenceConstraint).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("%w: reading the fence table %s: %w", connectors.ErrUnavailable, loc, err)
	}
	return n > 0, nil
}

// checkFenceKey makes sure fence keys are stored whole: a fence table
// made by hand with a length on fence_key would refuse long keys as if the
// records were bad, or, through a cast, merge two keys into one.
func (s *Sink) checkFenceKey(ctx context.Context, loc string) error {
	var typ string
	var whole bool
	err := s.pool.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod), atttypid IN ('text'::regtype, 'varchar'::regtype) AND atttypmod < 0
		FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'fence_key' AND NOT attisdropped`, quoteQualified(loc)).Scan(&typ, &whole)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: fence table %s has no column fence_key; drop the table so it is created again", s.sys.Name, loc)
	}
	if err != nil {
		return fmt.Errorf("%w: reading the fence table %s: %w", connectors.ErrUnavailable, loc, err)
	}
	if !whole {
		return fmt.Errorf("%s: fence table %s: fence_key is %s, which may not hold a fence key whole; it must be text (drop the table so it is created again)", s.sys.Name, loc, typ)
	}
	return nil
}

// queueFences queues the statement that records the fences of a write, in
// key order (so two writers lock the rows in one order), before the
// write's own statements: a write of an older tenure then fails as a whole.
func (s *Sink) queueFences(b *pgx.Batch, fences []connectors.Fence) {
	if s.fenceSQL == "" || len(fences) == 0 {
		return
	}
	sorted := slices.SortedFunc(slices.Values(fences), func(a, b connectors.Fence) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(b.Token, a.Token))
	})
	keys := make([]string, 0, len(sorted))
	tokens := make([]int64, 0, len(sorted))
	for i, f := range sorted {
		if i > 0 && f.Key == sorted[i-1].Key {
			continue // the highest token of a key comes first
		}
		keys = append(keys, f.Key)
		tokens = append(tokens, int64(f.Token))
	}
	b.Queue(s.fenceSQL, keys, tokens)
}
