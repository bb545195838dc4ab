package testenv

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSharedPostgresIsLogical(t *testing.T) {
	t.Parallel()
	ctx := Context(t)
	conn, err := pgx.Connect(ctx, NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil || level != "logical" {
		t.Fatalf("wal_level = %q, %v", level, err)
	}
}

func TestSharedRedisKeepsAOF(t *testing.T) {
	t.Parallel()
	c, ns := Redis(t)
	ctx := Context(t)
	if err := c.Set(ctx, ns+":k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "aof_enabled:1") {
		t.Fatalf("the shared test Redis runs without AOF:\n%s", info)
	}
}

func TestPrivateServersRestart(t *testing.T) {
	t.Parallel()
	r := StartRedis(t, true)
	r.Kill()
	r.Start()
	pg := StartPostgres(t)
	pg.StopImmediate()
	pg.Start()
	ctx := Context(t)
	conn, err := pgx.Connect(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
}
