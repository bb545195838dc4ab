package coord

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Limiter is a rate limit shared by every process of the fleet: GCRA (via
// go-redis/redis_rate), with its state in Redis and its clock Redis's own, so
// the limit holds across pushers whatever their clocks say.
type Limiter struct {
	c      *Client
	system string
	limit  redis_rate.Limit
	rl     *redis_rate.Limiter
}

// NewLimiter returns the shared limiter of a system: rate requests per
// second with bursts of up to burst. A rate that is not whole is kept exact
// by scaling the period (0.5/s is 1 per 2s).
func (c *Client) NewLimiter(system string, rate float64, burst int) (*Limiter, error) {
	if rate <= 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
		return nil, fmt.Errorf("rate limit of %s: %v is not a positive rate", system, rate)
	}
	if burst < 1 {
		burst = 1
	}
	limit := redis_rate.Limit{Rate: int(rate), Burst: burst, Period: time.Second}
	if rate != math.Trunc(rate) || rate < 1 {
		limit.Rate, limit.Period = int(math.Round(rate*1000)), 1000*time.Second
	}
	return &Limiter{c: c, system: system, limit: limit, rl: redis_rate.NewLimiter(c.rdb)}, nil
}

// Wait blocks until n requests are allowed, or ctx ends. n above the burst
// is admitted burst at a time.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	for n > 0 {
		step := min(n, l.limit.Burst)
		res, err := l.rl.AllowN(ctx, l.c.keys.rateLimit(l.system), l.limit, step)
		if err != nil {
			return fmt.Errorf("rate limit of %s: %w", l.system, err)
		}
		if res.Allowed == step {
			n -= step
			continue
		}
		wait := res.RetryAfter
		if wait <= 0 {
			wait = time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
