package config

import (
	"fmt"
	"strconv"
	"strings"
)

// DeadLetterLimit caps a system's dead-letter queue. When a dead letter
// would not fit, what would go there waits — the target's affected
// partitions, or the source's publishing — and is reported, until room is
// made or the limit raised; with DropOldest the oldest dead letters are
// dropped instead, and counted.
type DeadLetterLimit struct {
	// MaxEntries is the most dead letters kept; 0 means no limit
	// (dead_letter_max_entries, default 100000).
	MaxEntries int64
	// MaxBytes is the most bytes they hold; 0 means no limit
	// (dead_letter_max_bytes, default 256MiB; plain bytes or a number with
	// KB, MB, GB, KiB, MiB or GiB).
	MaxBytes int64
	// DropOldest drops the oldest dead letters to make room
	// (dead_letter_when_full: drop_oldest; default pause).
	DropOldest bool
}

// DefaultDeadLetterLimit is the limit of a system that sets none.
var DefaultDeadLetterLimit = DeadLetterLimit{MaxEntries: 100_000, MaxBytes: 256 << 20}

// set reads one of the dead_letter_* keys.
func (l *DeadLetterLimit) set(key, v string) error {
	switch key {
	case keyDLQEntries:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("expected a whole number of dead letters (0 for no limit), found %q", v)
		}
		l.MaxEntries = n
	case keyDLQBytes:
		n, err := parseBytes(v)
		if err != nil {
			return err
		}
		l.MaxBytes = n
	case keyDLQWhenFull:
		switch v {
		case "pause":
			l.DropOldest = false
		case "drop_oldest":
			l.DropOldest = true
		default:
			return fmt.Errorf("expected pause (wait until room is made; the default) or drop_oldest (drop and count the oldest), found %q", v)
		}
	}
	return nil
}

// parseBytes reads a size: plain bytes, or a number with a unit.
func parseBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("expected a size in bytes such as 268435456 or 256MiB (0 for no limit), found %q", v)
	}
	return n * mult, nil
}
