package connectortest

import (
	"context"
	"sync"
)

// Checkpoints keeps a source's checkpoints in memory (the ingest keeps them
// in Redis, fenced by the reader lock). The zero value is ready to use.
type Checkpoints struct {
	mu sync.Mutex
	m  map[string]string
}

// Load returns a checkpoint and whether it was saved.
func (c *Checkpoints) Load(ctx context.Context, name string) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[name]
	return v, ok, nil
}

// Save keeps a checkpoint.
func (c *Checkpoints) Save(ctx context.Context, name, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	c.m[name] = value
	return nil
}
