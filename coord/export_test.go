package coord

// DeadLetterReads counts the dead letters read for replays so far.
func DeadLetterReads(c *Client) int64 { return c.dlqReads.Load() }

// FirstBatch is the most objects a batch holds while nothing is known of the
// target.
const FirstBatch = firstBatch
