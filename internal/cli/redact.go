package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// defaultRedisURL is used when neither --redis nor REDIS_URL is set.
const defaultRedisURL = "redis://127.0.0.1:6379/0"

// RedactURL returns a URL fit for messages: the password (or, without a
// colon in the user part, the whole user part) replaced by xxxxx. It works
// on malformed URLs too, which is when they get printed: everything before
// the last '@' counts as user information.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	shown := "xxxxx"
	if hasPassword {
		shown = user + ":xxxxx"
	}
	out := shown + rest[at:]
	if ok {
		out = scheme + "://" + out
	}
	return out
}

// urlSecret is the part of raw that RedactURL hides; "" when none.
func urlSecret(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		rest = raw
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	if _, pw, has := strings.Cut(rest[:at], ":"); has {
		return pw
	}
	return rest[:at]
}

// redisURLError describes a --redis value that could not be parsed without
// showing its password: the URL is printed redacted, and a reason that
// would quote part of the password (a bad escape inside it, say) is
// withheld.
func redisURLError(raw string, err error) error {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error() // without the URL it quotes whole
	}
	if secret := urlSecret(raw); secret != "" && quotesSecret(msg, secret) {
		msg = "malformed URL (the parser's reason would quote the password)"
	}
	return fmt.Errorf("--redis %s: %s", RedactURL(raw), msg)
}

// quotesSecret reports whether msg contains secret, or quotes (in "...") a
// piece of it.
func quotesSecret(msg, secret string) bool {
	if strings.Contains(msg, secret) {
		return true
	}
	parts := strings.Split(msg, `"`)
	for i := 1; i < len(parts); i += 2 {
		if parts[i] != "" && strings.Contains(secret, parts[i]) {
			return true
		}
	}
	return false
}
