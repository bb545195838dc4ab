package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestMalformedRedisURLKeepsItsPassword: whatever is wrong with --redis, the
// error names the URL without its password.
func TestMalformedRedisURLKeepsItsPassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cr%zzet-pw" // with a bad escape: the parser's own reason would quote part of it
	const valid = "s3cret-pw"
	for _, tc := range []struct{ url, want string }{
		{"redis://remix:" + secret + "@redis.internal:notaport/0", `--redis redis://remix:xxxxx@redis.internal:notaport/0: invalid port ":notaport" after host`},
		{"redis://remix:" + secret + "@redis.internal/0", "--redis redis://remix:xxxxx@redis.internal/0: malformed URL (the parser's reason would quote the password)"},
		{"redis://remix:" + valid + "@redis.internal/abc", `--redis redis://remix:xxxxx@redis.internal/abc: redis: invalid database number: "abc"`},
		{"redis:// remix:" + secret + "@redis.internal/0", "--redis redis:// remix:xxxxx@redis.internal/0: net/url: invalid userinfo"},
		{"http://" + valid + "@redis.internal/0", "--redis http://xxxxx@redis.internal/0: redis: invalid URL scheme: http"},
		{"redis://remix:" + secret + "@[::1/0", `--redis redis://remix:xxxxx@[::1/0: missing ']' in host`},
		{"redis://remix:pa@ss:" + secret + "@h:x/0", `--redis redis://remix:xxxxx@h:x/0: invalid port ":x" after host`},
	} {
		c := Common{RedisURL: tc.url}
		_, err := c.Coord(context.Background(), Fleet{Namespace: "t", Partitions: 1, LeaseTTL: time.Second, LockTTL: time.Second}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			t.Fatalf("%s: parsed", tc.url)
		}
		if strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "pa@ss") {
			t.Errorf("the error shows the password: %v", err)
		}
		if err.Error() != tc.want {
			t.Errorf("error\n got %s\nwant %s", err, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":    "redis://127.0.0.1:6379/0",
		"redis://:pw@h:6379/0":        "redis://:xxxxx@h:6379/0",
		"rediss://user:pw@h/0":        "rediss://user:xxxxx@h/0",
		"redis://token@h/0":           "redis://xxxxx@h/0",
		"user:pw@h":                   "user:xxxxx@h",
		"redis://u:p/w@x@h/0?dial=1s": "redis://u:xxxxx@h/0?dial=1s",
		"redis://u:p%2Fw@h/0":         "redis://u:xxxxx@h/0",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestUsageDoesNotShowRedisURL: the usage text the flag package prints for
// a bad flag lists defaults; REDIS_URL must not be one of them. (Not
// parallel: it sets an environment variable.)
func TestUsageDoesNotShowRedisURL(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://remix:usage-s3cret@redis.internal:6379/0")
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	var c Common
	c.Register(fs)
	if err := fs.Parse([]string{"--no-such-flag"}); err == nil {
		t.Fatal("a bad flag parsed")
	}
	if strings.Contains(out.String(), "usage-s3cret") || !strings.Contains(out.String(), "-redis") {
		t.Fatalf("usage:\n%s", out.String())
	}
	if got := c.redisURL(); got != "redis://remix:usage-s3cret@redis.internal:6379/0" {
		t.Fatalf("REDIS_URL is not used: %q", got)
	}
}

// TestBadEntryCompressionNamesTheFlag: an unknown --entry-compression is
// refused before Redis is reached, with the flag and its variable named.
func TestBadEntryCompressionNamesTheFlag(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var f Fleet
	f.Register(fs)
	f.RegisterPublish(fs)
	if err := fs.Parse([]string{"--entry-compression", "zstd"}); err != nil {
		t.Fatal(err)
	}
	c := Common{RedisURL: "redis://127.0.0.1:1/0"} // nothing listens: a dial would fail otherwise
	_, err := c.Coord(context.Background(), f, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || err.Error() != `--entry-compression (REMIX_ENTRY_COMPRESSION): entry compression "zstd": must be "s2" or "none"` {
		t.Fatalf("error %v", err)
	}
}
