package coord

import (
	"context"
	"reflect"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Scripts queued in pipelines go by their SHA1 (EVALSHA) where they can,
// as go-redis's Script.Run does outside pipelines: a cursor move sent its
// 1.2 KB body with every call, for every partition of every batch. go-redis
// cannot fall back to EVAL inside a pipeline (a command's reply is known
// only once the pipeline has run), so scriptHook does it after the
// pipeline: Redis that lost its script cache (a restart, a failover to a
// replica, SCRIPT FLUSH, an eviction) answers NOSCRIPT and runs nothing of
// that command, and the command is sent again by body.
//
// A command sent again runs after every other command of its pipeline, and
// while Redis reads a long pipeline another client's EVAL may load the
// script, so some calls of one script may miss and later ones not. Only
// pipelines whose commands do not depend on running in order, and that end
// in nothing that must follow them (WAITAOF), queue scripts by SHA1: cursor
// moves, leases, trims, backlog counts. Publishes go by body (publish.go).

// scriptBodies maps the SHA1 of every script of this package to its body.
var scriptBodies sync.Map

// newScript makes a script that pipelines may queue by SHA1.
func newScript(src string) *redis.Script {
	s := redis.NewScript(src)
	scriptBodies.Store(s.Hash(), src)
	return s
}

// hooked holds the Redis clients given a scriptHook, so a client shared by
// several Clients gets one.
var hooked sync.Map

// hookScripts gives rdb a scriptHook once. (A Client without Redis, for
// its keys alone, gets nothing.) A process makes a Redis client or two, so
// remembering them costs nothing.
func hookScripts(rdb redis.UniversalClient) {
	if rdb == nil || reflect.ValueOf(rdb).IsNil() {
		return
	}
	if _, loaded := hooked.LoadOrStore(rdb, true); !loaded {
		rdb.AddHook(scriptHook{})
	}
}

// scriptHook sends again, by body, the EVALSHA commands of a pipeline that
// Redis answered NOSCRIPT, and gives their replies to the original
// commands, so callers see the replies the scripts would have given. A
// NOSCRIPT command ran nothing, so running it after the pipeline's other
// commands is running it in a later pipeline (see above for which
// pipelines may). Transactions (MULTI ... EXEC) are left alone: a command
// of theirs cannot run outside them.
type scriptHook struct{}

func (scriptHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if len(cmds) == 0 || cmds[0].Name() == "multi" {
			return err
		}
		var missed []*redis.Cmd
		var again []redis.Cmder
		for _, c := range cmds {
			cmd, ok := c.(*redis.Cmd)
			if !ok || !isNoScript(cmd.Err()) || cmd.Name() != "evalsha" {
				continue
			}
			args := cmd.Args()
			sha, _ := args[1].(string)
			body, ok := scriptBodies.Load(sha)
			if !ok {
				continue
			}
			eval := append([]any{"eval", body}, args[2:]...)
			missed = append(missed, cmd)
			again = append(again, redis.NewCmd(ctx, eval...))
		}
		if len(again) == 0 {
			return err
		}
		_ = next(ctx, again) // each command's own error is copied below
		for i, c := range again {
			a := c.(*redis.Cmd)
			missed[i].SetVal(a.Val())
			missed[i].SetErr(a.Err())
		}
		for _, c := range cmds {
			if e := c.Err(); e != nil {
				return e
			}
		}
		return nil
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
