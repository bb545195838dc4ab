package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	cases := []struct{ value, shown string }{
		{"postgres://remix:hunter2@db.internal:5432/app?sslmode=require&sslpassword=hunter2", "postgres://remix:xxxxx@db.internal:5432/app"},
		{"postgresql://db.internal/app", "postgresql://db.internal/app"},
		{"host=db.internal user=remix password=hunter2 dbname=app", "host=db.internal user=remix password=xxxxx dbname=app"},
		{"host=db user=remix password='hunter2 with spaces' dbname=app", "host=db user=remix password=xxxxx dbname=app"},
		{"sk_test_hunter2", "[redacted]"},
	}
	for _, c := range cases {
		s := NewSecret(c.value)
		if s.Reveal() != c.value {
			t.Fatalf("Reveal = %q", s.Reveal())
		}
		if s.String() != c.shown {
			t.Errorf("String(%q) = %q, want %q", c.value, s.String(), c.shown)
		}
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		log.Info("connecting", "dsn", s, "settings", Settings{"dsn": {Value: s}})
		b, _ := json.Marshal(struct{ DSN Secret }{s})
		printed := []string{
			fmt.Sprintf("%v|%s|%+v|%#v|%q", s, s, s, s, s),
			fmt.Sprintf("%v|%+v", struct{ S Secret }{s}, &struct{ S Secret }{s}),
			buf.String(),
			string(b),
			fmt.Errorf("connect %v: %w", s, errors.New("refused")).Error(),
		}
		for _, p := range printed {
			if strings.Contains(p, "hunter2") {
				t.Errorf("secret printed: %s", p)
			}
		}
	}
}

func TestInterpolate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "1", "EMPTY": "", "HOST": "db"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "1"},
		{in: "x${A}y${HOST}z", want: "x1ydbz"},
		{in: "${MISSING:-fallback}", want: "fallback"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${EMPTY}", want: ""},
		{in: "$$A and $${A}", want: "$A and ${A}"},
		{in: "cost: $5", want: "cost: $5"},
		{in: "trailing $", want: "trailing $"},
		{in: "${MISSING}", err: "environment variable MISSING is not set"},
		{in: "${A", err: "unclosed ${"},
		{in: "${1BAD}", err: `"1BAD" is not a valid environment variable name`},
	}
	for _, c := range cases {
		got, err := interpolate(c.in, getenv)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("interpolate(%q) = %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	keys := []string{"dsn", "replication_dsn", "rate_limit", "rate_bucket_size", "search_key", "max_open_connections"}
	for in, want := range map[string]string{"dns": "dsn", "rate_limt": "rate_limit", "serch_key": "search_key", "max_open_conections": "max_open_connections", "zzz": "", "x": ""} {
		if got := closest(in, keys); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
