package coord

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Durability is what Redis promises about data it acknowledged.
type Durability struct {
	AOF     bool   // an append-only file is kept
	Fsync   string // appendfsync: always, everysec or no ("" when unknown)
	Version string
	WaitAOF bool // the server has WAITAOF (7.2 and newer)
}

// CheckDurability reads the server's persistence settings from INFO, which
// works where CONFIG is disabled (managed Redis).
func (c *Client) CheckDurability(ctx context.Context) (Durability, error) {
	info, err := c.rdb.Info(ctx, "persistence", "server").Result()
	if err != nil {
		return Durability{}, fmt.Errorf("reading redis INFO: %w", err)
	}
	var d Durability
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "aof_enabled":
			d.AOF = v == "1"
		case "redis_version":
			d.Version = v
			d.WaitAOF = versionAtLeast(v, 7, 2)
		}
	}
	if vals, err := c.rdb.ConfigGet(ctx, "appendfsync").Result(); err == nil {
		d.Fsync = vals["appendfsync"]
	}
	// From now on every publish waits for the AOF fsync where the server
	// can say so (WAITAOF, in the same pipeline, so on the same connection as
	// the writes it covers). Elsewhere, with appendfsync everysec, a Redis
	// process crash loses nothing acknowledged and a machine crash up to
	// about a second.
	c.waitAOF.Store(d.AOF && d.WaitAOF)
	return d, nil
}

// RequireDurable returns ErrNotDurable, with the reason and the way out,
// when Redis keeps no AOF, unless the operator accepted the risk.
func (d Durability) RequireDurable(acceptRisk bool) error {
	if d.AOF || acceptRisk {
		return nil
	}
	return fmt.Errorf("%w: it keeps no append-only file (appendonly no), so a Redis restart loses objects "+
		"whose source positions the ingest has already confirmed, and they cannot be read from the source again; "+
		"turn on appendonly (CONFIG SET appendonly yes, appendfsync everysec or always) or start with "+
		"--accept-redis-data-loss to accept the risk", ErrNotDurable)
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
