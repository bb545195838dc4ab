package config

import (
	"fmt"
	"strconv"
	"time"
)

// Kind is the type of a connector setting.
type Kind uint8

// Setting kinds.
const (
	KindString Kind = iota
	KindSecret
	KindInt
	KindFloat
	KindBool
	KindDuration
)

func (k Kind) String() string {
	return [...]string{"string", "secret", "integer", "number", "boolean", "duration"}[k]
}

// SettingSpec describes one connector-specific key of a system.
type SettingSpec struct {
	Name     string
	Kind     Kind
	Required bool
	// Default is used when the key is absent: a string, int64, float64,
	// bool or time.Duration matching Kind; nil for no value.
	Default any
	// Min bounds integers, numbers and durations from below when set.
	Min *float64
	// Check, when set, checks a string setting's spelling.
	Check func(string) error
	Doc   string
}

// Spec is what the configuration loader knows of a connector type: its keys,
// and whether and where it can receive and push. Connectors declare their own
// Spec; the caller hands the loader the set of known types.
type Spec struct {
	Type     string
	Settings []SettingSpec
	Receive  bool // a system of this type may have a receive mixer
	Push     bool // a system of this type may have a push mixer
	// ReceiveLocation and PushLocation check a location's spelling offline
	// (e.g. PostgreSQL's schema.table); nil accepts any.
	ReceiveLocation func(string) error
	PushLocation    func(string) error
	// Claims, when set, lists the names a system takes on its server (a
	// replication slot, a publication), so Load can refuse two systems that
	// would share one.
	Claims func(*System) []Claim
	// Warn, when set, says what about a loaded system will not stop it
	// but will not work as its configuration suggests (a helper program
	// that is missing); every sentence is a warning of `remix validate`.
	Warn func(*System) []string
}

// Claim is a name a system takes where no other system may take it too.
type Claim struct {
	What string // the kind of name, e.g. "replication slot"
	Name string
	// Scope is where the name must be unique (a server, a database), as the
	// connector spells it; "" when it cannot be told offline (a DSN from an
	// unset variable), and then it may be anywhere.
	Scope string
	// Key is the setting that names it, for the error's position when the
	// system sets it.
	Key string
	// Hint says what sharing it would do and how to avoid it.
	Hint string
}

// Specs are the connector types a configuration may use, by type name.
type Specs map[string]*Spec

// Setting is one connector setting's value and where it was written.
type Setting struct {
	Value any // string, Secret, int64, float64, bool or time.Duration
	Pos   Pos
	Set   bool // written in the file (false: the default)
}

// Settings are a system's connector-specific values, defaults applied.
type Settings map[string]Setting

// String returns a string setting ("" when unset).
func (s Settings) String(name string) string { v, _ := s[name].Value.(string); return v }

// Secret returns a secret setting.
func (s Settings) Secret(name string) Secret { v, _ := s[name].Value.(Secret); return v }

// Int returns an integer setting (0 when unset).
func (s Settings) Int(name string) int64 { v, _ := s[name].Value.(int64); return v }

// Float returns a number setting (0 when unset).
func (s Settings) Float(name string) float64 { v, _ := s[name].Value.(float64); return v }

// Bool returns a boolean setting.
func (s Settings) Bool(name string) bool { v, _ := s[name].Value.(bool); return v }

// Duration returns a duration setting.
func (s Settings) Duration(name string) time.Duration {
	v, _ := s[name].Value.(time.Duration)
	return v
}

// Has reports whether the key was written in the file.
func (s Settings) Has(name string) bool { return s[name].Set }

// parseSetting converts an interpolated scalar to the spec's kind. The value
// of a secret never appears in an error.
func parseSetting(spec *SettingSpec, text string) (any, error) {
	var v any
	var num float64
	switch spec.Kind {
	case KindString:
		if spec.Check != nil {
			if err := spec.Check(text); err != nil {
				return nil, err
			}
		}
		return text, nil
	case KindSecret:
		return NewSecret(text), nil
	case KindInt:
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("expected an integer, found %q", text)
		}
		v, num = i, float64(i)
	case KindFloat:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("expected a number, found %q", text)
		}
		v, num = f, f
	case KindBool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, fmt.Errorf("expected true or false, found %q", text)
		}
		return b, nil
	case KindDuration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return nil, fmt.Errorf("expected a duration such as 30s or 5m, found %q", text)
		}
		v, num = d, d.Seconds()
	default:
		return nil, fmt.Errorf("unknown setting kind %d", spec.Kind)
	}
	if spec.Min != nil && num < *spec.Min {
		if spec.Kind == KindDuration {
			return nil, fmt.Errorf("must be at least %v, found %q", time.Duration(*spec.Min*float64(time.Second)), text)
		}
		return nil, fmt.Errorf("must be at least %v, found %q", *spec.Min, text)
	}
	return v, nil
}

// Float64 returns a pointer to f, for SettingSpec.Min.
func Float64(f float64) *float64 { return &f }
