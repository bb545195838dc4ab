package config

import (
	"log/slog"
	"net/url"
	"regexp"
)

// Secret holds a DSN password, an API key or a webhook secret. Every way of
// printing it (fmt verbs, slog, JSON) shows a redacted form; Reveal returns the
// value for the one place that needs it.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the secret value. Never log what it returns.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no value was set.
func (s Secret) IsZero() bool { return s.v == "" }

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// String shows a DSN with its password replaced by "xxxxx" (host and database
// help diagnose connection problems) and anything else as "[redacted]".
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	if u, err := url.Parse(s.v); err == nil && u.Scheme != "" && u.Host != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		u.RawQuery = ""
		return u.Redacted()
	}
	if kvPassword.MatchString(s.v) {
		return kvPassword.ReplaceAllString(s.v, "${1}xxxxx")
	}
	return "[redacted]"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return "config.Secret(" + s.String() + ")" }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps encoding/json from printing the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText keeps text encoders from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
