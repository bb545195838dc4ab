package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Checkpoint is a source's saved position, for example the last Stripe
// event handled. Its encoding is versioned and pinned by a golden file.
type Checkpoint struct {
	Version  int             `json:"v"`
	Position string          `json:"position"`         // the cursor itself, opaque to coord
	Extra    json.RawMessage `json:"extra,omitempty"`  // connector-specific state
	Updated  time.Time       `json:"updated"`          // when it was written
	Holder   int64           `json:"holder,omitempty"` // fencing token number of the writer
}

// checkpointVersion is the encoding version written today.
const checkpointVersion = 1

// EncodeCheckpoint returns the stored form of a checkpoint.
func EncodeCheckpoint(cp Checkpoint) ([]byte, error) {
	cp.Version = checkpointVersion
	cp.Updated = cp.Updated.UTC()
	return json.Marshal(cp)
}

// DecodeCheckpoint reads a stored checkpoint.
func DecodeCheckpoint(b []byte) (Checkpoint, error) {
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("decoding checkpoint: %w", err)
	}
	if cp.Version != checkpointVersion {
		return cp, fmt.Errorf("checkpoint version %d is not supported (this build reads %d)", cp.Version, checkpointVersion)
	}
	return cp, nil
}

// SaveCheckpoint writes a named checkpoint of a source, fenced by the
// caller's reader lock (ErrFenced when it is no longer the holder).
func (c *Client) SaveCheckpoint(ctx context.Context, source, name string, lock *ReaderLock, cp Checkpoint) error {
	cp.Holder = lock.Token()
	if cp.Updated.IsZero() {
		cp.Updated = time.Now()
	}
	b, err := EncodeCheckpoint(cp)
	if err != nil {
		return err
	}
	err = saveCheckpointScript.Run(ctx, c.rdb, []string{c.keys.readerLock(source), c.keys.checkpoint(source, name)}, lock.Value(), b).Err()
	if err != nil {
		return fmt.Errorf("saving checkpoint %s of %s: %w", name, source, scriptError(err))
	}
	return nil
}

// LoadCheckpoint reads a named checkpoint; ok is false when none was saved.
func (c *Client) LoadCheckpoint(ctx context.Context, source, name string) (cp Checkpoint, ok bool, err error) {
	b, err := c.rdb.Get(ctx, c.keys.checkpoint(source, name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, fmt.Errorf("loading checkpoint %s of %s: %w", name, source, err)
	}
	cp, err = DecodeCheckpoint(b)
	return cp, err == nil, err
}
