package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
)

// ReaderLock is the exclusive right to read a source and publish its
// changes. Its value is its fencing token: "<n>-<random>", where n grows
// with every attempt to take the source's lock, so a later holder has a
// larger n. Publish and SaveCheckpoint check it inside
// Redis, so a holder that stalled past the TTL (a GC pause, SIGSTOP) cannot
// write once another ingest has taken over, whatever it still has buffered.
type ReaderLock struct {
	c      *Client
	source string
	mutex  *redsync.Mutex
	token  int64
	lost   chan struct{}
	once   sync.Once
	stop   chan struct{}
	done   chan struct{}
}

// AcquireReader takes the reader lock of a source, waiting as a standby
// (polling every LockTTL/4) while another ingest holds it, until ctx ends.
// The returned lock extends itself every LockTTL/3; when it cannot before
// its validity runs out, Lost is closed and the holder must stop reading
// and publishing.
func (c *Client) AcquireReader(ctx context.Context, source string) (*ReaderLock, error) {
	rs := redsync.New(goredis.NewPool(c.rdb))
	l := &ReaderLock{c: c, source: source, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	l.mutex = rs.NewMutex(c.keys.readerLock(source),
		redsync.WithExpiry(c.cfg.LockTTL),
		redsync.WithTries(1),
		redsync.WithGenValueFunc(func() (string, error) {
			n, err := c.rdb.Incr(ctx, c.keys.fenceCounter(source)).Result()
			if err != nil {
				return "", err
			}
			b := make([]byte, 8)
			if _, err := rand.Read(b); err != nil {
				return "", err
			}
			l.token = n
			return strconv.FormatInt(n, 10) + "-" + hex.EncodeToString(b), nil
		}))
	poll := max(c.cfg.LockTTL/4, 50*time.Millisecond)
	waiting := false
	for {
		err := l.mutex.TryLockContext(ctx)
		if err == nil {
			break
		}
		var taken *redsync.ErrTaken
		if !errors.As(err, &taken) && !errors.Is(err, redsync.ErrFailed) {
			c.log.Warn("reader lock: trying again", "source", source, "error", err)
		} else if !waiting {
			c.log.Info("another ingest reads this source; standing by", "source", source)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
	c.log.Info("reader lock acquired", "source", source, "token", l.token)
	go l.keep()
	return l, nil
}

// Value is the lock's fencing token, checked by every publish.
func (l *ReaderLock) Value() string { return l.mutex.Value() }

// Token is the holder number inside the fencing token.
func (l *ReaderLock) Token() int64 { return l.token }

// Lost is closed when the lock could not be kept.
func (l *ReaderLock) Lost() <-chan struct{} { return l.lost }

func (l *ReaderLock) markLost() { l.once.Do(func() { close(l.lost) }) }

// keep extends the lock every LockTTL/3. A failed extension is retried
// until the validity ends; then the lock is lost.
func (l *ReaderLock) keep() {
	defer close(l.done)
	every := l.c.cfg.LockTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		for {
			ctx, cancel := context.WithDeadline(context.Background(), l.mutex.Until())
			ok, err := l.mutex.ExtendContext(ctx)
			cancel()
			if ok {
				break
			}
			if time.Now().After(l.mutex.Until()) || errors.Is(err, redsync.ErrExtendFailed) && !l.held() {
				l.c.log.Error("reader lock lost: stop reading", "source", l.source, "token", l.token, "error", err)
				l.markLost()
				return
			}
			select {
			case <-l.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// held reports whether Redis still holds this lock's value.
func (l *ReaderLock) held() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := l.c.rdb.Get(ctx, l.c.keys.readerLock(l.source)).Result()
	return err == nil && v == l.Value()
}

// Release gives the lock up so a standby takes over at once.
func (l *ReaderLock) Release(ctx context.Context) error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	l.markLost()
	if _, err := l.mutex.UnlockContext(ctx); err != nil && !errors.Is(err, redsync.ErrLockAlreadyExpired) {
		return fmt.Errorf("releasing reader lock of %s: %w", l.source, err)
	}
	return nil
}
