package coord

import (
	"context"
	"fmt"
)

// DeadLetterByID reads one dead letter of a system; ok is false when the
// queue holds no such id.
func (c *Client) DeadLetterByID(ctx context.Context, system, id string) (d DeadLetter, ok bool, err error) {
	msgs, err := c.rdb.XRangeN(ctx, c.keys.dlq(system), id, id, 1).Result()
	if err != nil {
		return DeadLetter{}, false, fmt.Errorf("reading dead letter %s of %s: %w", id, system, err)
	}
	if len(msgs) == 0 {
		return DeadLetter{}, false, nil
	}
	return parseDeadLetter(system, msgs[0]), true, nil
}

// DeadLettersOfKey returns, in order, the dead letters that park the same
// model and key as d in its system and stage: d and those held behind it.
func (c *Client) DeadLettersOfKey(ctx context.Context, d *DeadLetter) ([]DeadLetter, error) {
	return c.deadLettersOf(ctx, d.System, d.Stage, d.Model, d.Key)
}
