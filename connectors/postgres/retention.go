package postgres

import (
	"context"
	"errors"
	"fmt"
)

// Retained is the WAL the source's replication slot holds on the server,
// from its restart position to the server's current one, in bytes
// (connectors.RetentionReporter): what a stopped or slow Remix costs the
// source's disk (see max_slot_wal_keep_size).
func (s *Source) Retained(ctx context.Context) (uint64, error) {
	pool := s.pool
	if pool == nil {
		return 0, errors.New("the source is not open")
	}
	var n int64
	err := pool.QueryRow(ctx, `SELECT COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, s.slot).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("reading the WAL slot %s holds: %w", s.slot, err)
	}
	return uint64(max(n, 0)), nil
}
