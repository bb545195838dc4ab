package config

import "fmt"

// checkClaims reports every system that takes a name (Spec.Claims) another
// system, earlier in file order, already takes in the same scope. An
// unknown scope meets every scope: offline, two systems whose servers
// cannot be told apart may be on one.
func checkClaims(systems []*System) Errors {
	type taken struct {
		c   Claim
		sys *System
	}
	var seen []taken
	var out Errors
	for _, s := range systems {
		if s.Spec == nil || s.Spec.Claims == nil {
			continue
		}
		for _, c := range s.Spec.Claims(s) {
			for _, p := range seen {
				if p.sys == s || p.c.What != c.What || p.c.Name != c.Name || p.c.Scope != c.Scope && p.c.Scope != "" && c.Scope != "" {
					continue
				}
				where := "on " + c.Scope
				if c.Scope == "" || p.c.Scope == "" {
					where = "maybe on the same server (a DSN is not known offline)"
				}
				pos, key := s.Pos, keyPath(s.Name)
				if c.Key != "" && s.Settings.Has(c.Key) {
					pos, key = s.Settings[c.Key].Pos, keyPath(s.Name, c.Key)
				}
				out = append(out, &Error{Pos: pos, Key: key,
					Msg: fmt.Sprintf("%s %q, %s, is already taken by system %s (%s): %s", c.What, c.Name, where, p.sys.Name, p.sys.Pos, c.Hint)})
				break
			}
			seen = append(seen, taken{c, s})
		}
	}
	return out
}
