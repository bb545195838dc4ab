package postgres

import (
	"github.com/jackc/pglogrepl"

	"github.com/sqlpipe/remix/connectors"
)

// Progress reports the snapshot's progress and the WAL positions read and
// confirmed (connectors.ProgressReporter).
func (s *Source) Progress() connectors.Progress {
	read, confirmed := s.stats.ReceivedLSN.Load(), s.stats.ConfirmedLSN.Load()
	p := connectors.Progress{
		Snapshotting: s.snapshotPending.Load(), SnapshotRows: s.stats.SnapshotRows.Load(), SnapshotEstimate: s.stats.SnapshotEstimate.Load(),
		ReadOffset: read, ConfirmedOffset: confirmed,
	}
	if read > 0 {
		p.ReadPosition = pglogrepl.LSN(read).String()
	}
	if confirmed > 0 {
		p.ConfirmedPosition = pglogrepl.LSN(confirmed).String()
	}
	return p
}
