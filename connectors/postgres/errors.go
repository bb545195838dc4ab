package postgres

import (
	"errors"
	"fmt"

	"github.com/sqlpipe/remix/connectors"
)

var (
	// ErrSlotLost means the replication slot this source was reading is gone
	// (dropped, or invalidated by max_slot_wal_keep_size). Remix stops rather
	// than create a new slot at the current position, which would skip every
	// change made in between.
	ErrSlotLost = fmt.Errorf("replication slot lost: %w", connectors.ErrPositionLost)
	// ErrNotOwner means the slot or the publication a source would use
	// exists on the server but is not this source's: another source's,
	// another Remix deployment's, or another tool's. Using it would take
	// their changes (a slot confirms what it reads) or change what they
	// read (a publication's tables), so the source does not start.
	ErrNotOwner = errors.New("not this source's")
)
