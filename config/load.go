package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sqlpipe/remix/mixer"
)

// Options says where a configuration is and what it may use.
type Options struct {
	SystemsDir string // SYSTEMS_DIR
	ModelsDir  string // MODELS_DIR
	Specs      Specs  // the connector types known to this build
	// Getenv resolves ${NAME}; nil uses the process environment.
	Getenv func(string) (string, bool)
	// UnsetVariablesWarn makes an unset ${NAME} without a default a
	// warning instead of an error, and leaves the value it is part of
	// unchecked: for checking a configuration offline, where the secrets
	// are not at hand. Default false: an error, as it must be when Remix
	// runs.
	UnsetVariablesWarn bool
}

// Config is a loaded, checked configuration.
type Config struct {
	Systems  []*System // files in name order, systems in file order
	Models   map[string]*mixer.Model
	Warnings Errors // problems that do not stop Remix, such as a model nobody pushes
	// Unset are the warnings of unset ${NAME}s (Options.UnsetVariablesWarn),
	// also in Warnings.
	Unset Errors
}

// System is one configured system.
type System struct {
	Name string
	Type string
	Spec *Spec
	Pos  Pos // where the system's name is written
	// RateLimit is the requests per second to this system shared by every
	// pusher of the fleet; 0 means unlimited (rate_limit, default none).
	RateLimit float64
	// RateBucketSize is the burst above the rate (rate_bucket_size, default
	// the rate rounded up, at least 1).
	RateBucketSize int
	// WritesInFlight is how many batches each pusher writes to this system
	// at once, each holding its own partitions, so one key's changes still
	// apply in order (writes_in_flight, default DefaultWritesInFlight).
	WritesInFlight int
	// BatchTime is about how long one batch should take to write to this
	// system: pushers size batches from its recent writes to that (see
	// coord.Config.BatchTime); 0 keeps the fleet's default, negative sizes
	// by object count alone (batch_time, a duration or "off").
	BatchTime time.Duration
	// DeadLetters caps the system's dead-letter queue
	// (dead_letter_max_entries, dead_letter_max_bytes,
	// dead_letter_when_full).
	DeadLetters DeadLetterLimit
	Settings    Settings
	Receive     *mixer.Receiver  // nil unless the system is a source
	Push        *mixer.PushMixer // nil unless the system is a target
	positions   map[string]Pos
}

// PosOf returns where a key path of the system was written, e.g.
// PosOf("push_mixer", "product", "public.products", "stripe_id"); the
// system's own position when that path is unknown.
func (s *System) PosOf(keys ...string) Pos {
	if p, ok := s.positions[keyPath(keys...)]; ok {
		return p
	}
	return s.Pos
}

// System returns the named system, or nil.
func (c *Config) System(name string) *System {
	for _, s := range c.Systems {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Sources returns the systems with a receive mixer.
func (c *Config) Sources() []*System {
	var out []*System
	for _, s := range c.Systems {
		if s.Receive != nil {
			out = append(out, s)
		}
	}
	return out
}

// Targets returns the systems with a push mixer.
func (c *Config) Targets() []*System {
	var out []*System
	for _, s := range c.Systems {
		if s.Push != nil {
			out = append(out, s)
		}
	}
	return out
}

// TargetsOf returns the systems that push objects of a model.
func (c *Config) TargetsOf(model string) []*System {
	var out []*System
	for _, s := range c.Targets() {
		if len(s.Push.Rules(model)) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// The keys every system may have, beside its connector's settings.
const (
	keyType          = "type"
	keyRateLimit     = "rate_limit"
	keyRateBucket    = "rate_bucket_size"
	keyReceiveMixer  = "receive_mixer"
	keyReceiveRouter = "receive_router"
	keyPushMixer     = "push_mixer"
	keyPushRouter    = "push_router"
	keyDLQEntries    = "dead_letter_max_entries"
	keyDLQBytes      = "dead_letter_max_bytes"
	keyDLQWhenFull   = "dead_letter_when_full"
	keyWrites        = "writes_in_flight"
	keyBatchTime     = "batch_time"
)

// DefaultWritesInFlight is how many batches a pusher writes to one target
// at once unless writes_in_flight says otherwise: enough to keep a remote
// target, where a write mostly waits for the network, busy from a few
// pushers; a target that cannot take that many concurrent writers sets it
// lower.
const DefaultWritesInFlight = 4

// MaxWritesInFlight bounds writes_in_flight.
const MaxWritesInFlight = 64

var commonKeys = []string{keyType, keyRateLimit, keyRateBucket, keyReceiveMixer, keyReceiveRouter, keyPushMixer, keyPushRouter,
	keyDLQEntries, keyDLQBytes, keyDLQWhenFull, keyWrites, keyBatchTime}

var systemName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Load reads and checks a configuration. Its error, when not nil, is Errors:
// every problem found, each naming file, line, column and key.
func Load(opts Options) (*Config, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	var errs Errors
	models := loadModels(opts.ModelsDir, &errs)
	var unset Errors
	l := &loader{opts: opts, getenv: getenv, errs: &errs, models: models}
	if opts.UnsetVariablesWarn {
		l.unset = &unset
	}
	cfg := &Config{Models: map[string]*mixer.Model{}}
	for title, m := range models {
		cfg.Models[title] = m.model
	}
	names, ok := listDir(opts.SystemsDir, "systems", &errs, ".yaml", ".yml")
	if ok && len(names) == 0 {
		errs = append(errs, &Error{Pos: Pos{File: opts.SystemsDir}, Msg: "no system files (*.yaml, *.yml) in the systems directory"})
	}
	seen := map[string]*System{}
	for _, name := range names {
		for _, s := range l.loadFile(filepath.Join(opts.SystemsDir, name)) {
			if prev, dup := seen[s.Name]; dup {
				errs = append(errs, &Error{Pos: s.Pos, Key: keyPath(s.Name), Msg: "system name is already used at " + prev.Pos.String() + "; names must be unique across files"})
				continue
			}
			seen[s.Name] = s
			cfg.Systems = append(cfg.Systems, s)
		}
	}
	errs = append(errs, checkClaims(cfg.Systems)...)
	cfg.Unset = unset
	cfg.Warnings = append(slices.Clone(unset), l.warnings(cfg)...).sorted()
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return cfg, nil
}

type loader struct {
	opts   Options
	getenv func(string) (string, bool)
	errs   *Errors
	unset  *Errors // unset variables, when they are warnings (Options.UnsetVariablesWarn)
	models map[string]*modelFile
}

func (l *loader) loadFile(path string) []*System {
	data, err := os.ReadFile(path)
	if err != nil {
		*l.errs = append(*l.errs, &Error{Pos: Pos{File: path}, Msg: err.Error()})
		return nil
	}
	return l.loadBytes(path, data)
}

func (l *loader) loadBytes(path string, data []byte) []*System {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		*l.errs = append(*l.errs, yamlSyntaxError(path, err))
		return nil
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	f := &file{name: path, getenv: l.getenv, errs: l.errs, unset: l.unset}
	entries, ok := f.mapping(doc.Content[0], nil, "system names mapped to their settings")
	if !ok {
		return nil
	}
	var out []*System
	for _, e := range entries {
		if strings.HasPrefix(e.name, "x-") {
			continue // a template for anchors, as in Compose files
		}
		if s := l.system(f, e); s != nil {
			out = append(out, s)
		}
	}
	return out
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlSyntaxError(path string, err error) *Error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Pos: Pos{File: path, Line: line, Col: 1}, Msg: "YAML syntax: " + m[2] + yamlHint(m[2])}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return &Error{Pos: Pos{File: path}, Msg: "YAML syntax: " + msg + yamlHint(msg)}
}

// yamlHint says what usually causes the YAML parser's terser messages: the
// line it names is where it gave up, often below the mistake.
func yamlHint(msg string) string {
	switch {
	case strings.Contains(msg, "did not find expected key"):
		return "; the mapping that starts here has a line indented deeper or shallower than its keys (the keys of one mapping start at the same column)"
	case strings.Contains(msg, "mapping values are not allowed"):
		return "; a \"key: value\" where only a value may stand: check this line's indentation against the line above, and quote a value holding \": \""
	case strings.Contains(msg, "did not find expected '-' indicator"):
		return "; a list item here or above is indented differently from the items beside it"
	case strings.Contains(msg, "unexpected end of stream"), strings.Contains(msg, "could not find expected"):
		return "; a quote or bracket opened above is not closed"
	}
	return ""
}

func (l *loader) system(f *file, e entry) *System {
	s := &System{Name: e.name, Pos: f.pos(e.key), Settings: Settings{}, positions: map[string]Pos{}, DeadLetters: DefaultDeadLetterLimit}
	path := []string{e.name}
	if !systemName.MatchString(e.name) {
		f.errorf(e.key, path, "a system name is 1 to 63 letters, digits, '_', '-' or '.', starting with a letter or digit")
	}
	entries, ok := f.mapping(e.val, path, "the system's settings (type, mixers, ...)")
	if !ok {
		return nil
	}
	byName := map[string]entry{}
	for _, se := range entries {
		byName[se.name] = se
		s.positions[keyPath(se.name)] = f.pos(se.key)
	}
	if te, has := byName[keyType]; !has {
		f.errorf(e.key, path, "missing key %q (one of: %s)", keyType, strings.Join(l.types(), ", "))
	} else if t, ok := f.scalar(te.val, sub(path, keyType)); ok {
		s.Type = t
		s.Spec = l.opts.Specs[t]
		if s.Spec == nil {
			f.errorf(te.val, sub(path, keyType), "unknown connector type %q%s; known types: %s", t, suggest(t, l.types()), strings.Join(l.types(), ", "))
		}
	}
	known := append([]string(nil), commonKeys...)
	if s.Spec != nil {
		for _, st := range s.Spec.Settings {
			known = append(known, st.Name)
		}
	}
	var receiveNode, pushNode *entry
	hinted := map[string]bool{} // keys an unknown key was said to be a typo of
	for i := range entries {
		se := &entries[i]
		kp := sub(path, se.name)
		switch se.name {
		case keyType:
		case keyRateLimit:
			if v, ok := f.scalar(se.val, kp); ok {
				r, err := strconv.ParseFloat(v, 64)
				if err != nil || r <= 0 || math.IsInf(r, 0) || math.IsNaN(r) {
					f.errorf(se.val, kp, "expected a number of requests per second above 0, found %q", v)
				} else {
					s.RateLimit = r
				}
			}
		case keyRateBucket:
			if v, ok := f.scalar(se.val, kp); ok {
				b, err := strconv.Atoi(v)
				if err != nil || b < 1 {
					f.errorf(se.val, kp, "expected a whole number of requests of at least 1, found %q", v)
				} else {
					s.RateBucketSize = b
				}
			}
		case keyWrites:
			if v, ok := f.scalar(se.val, kp); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > MaxWritesInFlight {
					f.errorf(se.val, kp, "expected a whole number of writes from 1 to %d, found %q", MaxWritesInFlight, v)
				} else {
					s.WritesInFlight = n
				}
			}
		case keyBatchTime:
			if v, ok := f.scalar(se.val, kp); ok {
				if v == "off" {
					s.BatchTime = -1
				} else if d, err := time.ParseDuration(v); err != nil || d < 10*time.Millisecond || d > time.Hour {
					f.errorf(se.val, kp, "expected a duration from 10ms to 1h (such as 250ms or 2s), or off, found %q", v)
				} else {
					s.BatchTime = d
				}
			}
		case keyDLQEntries, keyDLQBytes, keyDLQWhenFull:
			if v, ok := f.scalar(se.val, kp); ok {
				if err := s.DeadLetters.set(se.name, v); err != nil {
					f.errorf(se.val, kp, "%v", err)
				}
			}
		case keyReceiveMixer, keyReceiveRouter:
			if receiveNode != nil {
				f.errorf(se.key, kp, "%s and %s are the same thing (receive_router is the older name); keep one", receiveNode.name, se.name)
				continue
			}
			receiveNode = se
		case keyPushMixer, keyPushRouter:
			if pushNode != nil {
				f.errorf(se.key, kp, "%s and %s are the same thing (push_router is the older name); keep one", pushNode.name, se.name)
				continue
			}
			pushNode = se
		default:
			if s.Spec == nil {
				continue // the unknown type is reported; its keys cannot be checked
			}
			st := specSetting(s.Spec, se.name)
			if st == nil {
				if hint := suggest(se.name, known); hint != "" {
					f.errorf(se.key, kp, "unknown key%s", hint)
					hinted[closest(se.name, known)] = true
				} else {
					f.errorf(se.key, kp, "unknown key; a %s system takes: %s", s.Type, strings.Join(sortedCopy(known), ", "))
				}
				continue
			}
			if v, ok := f.scalar(se.val, kp); ok {
				val, err := parseSetting(st, v)
				if err != nil {
					f.errorf(se.val, kp, "%v", err)
					continue
				}
				s.Settings[st.Name] = Setting{Value: val, Pos: f.pos(se.val), Set: true}
			}
		}
	}
	if s.RateBucketSize > 0 && s.RateLimit == 0 {
		f.errorf(byName[keyRateBucket].key, sub(path, keyRateBucket), "needs rate_limit: a burst size without a rate limits nothing")
	}
	if s.RateLimit > 0 && s.RateBucketSize == 0 {
		s.RateBucketSize = max(1, int(math.Ceil(s.RateLimit)))
	}
	if s.WritesInFlight == 0 {
		s.WritesInFlight = DefaultWritesInFlight
	}
	if s.Spec != nil {
		for i := range s.Spec.Settings {
			st := &s.Spec.Settings[i]
			if _, written := byName[st.Name]; written || hinted[st.Name] {
				continue // present (maybe with a bad value, reported) or misspelt (reported)
			}
			if st.Required {
				f.errorf(e.key, path, "missing key %q (%s)", st.Name, st.Doc)
				continue
			}
			if st.Default != nil {
				s.Settings[st.Name] = Setting{Value: st.Default, Pos: s.Pos}
			}
		}
	}
	if receiveNode != nil {
		if s.Spec != nil && !s.Spec.Receive {
			f.errorf(receiveNode.key, sub(path, receiveNode.name), "a %s system cannot be a source", s.Type)
		} else {
			s.Receive = l.receiveMixer(f, s, receiveNode.val, sub(path, receiveNode.name))
		}
	}
	if pushNode != nil {
		if s.Spec != nil && !s.Spec.Push {
			f.errorf(pushNode.key, sub(path, pushNode.name), "a %s system cannot be a target", s.Type)
		} else {
			s.Push = l.pushMixer(f, s, pushNode.val, sub(path, pushNode.name))
		}
	}
	return s
}

func (l *loader) types() []string {
	out := make([]string, 0, len(l.opts.Specs))
	for t := range l.opts.Specs {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (l *loader) modelTitles() []string {
	out := make([]string, 0, len(l.models))
	for t := range l.models {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// warnings finds what is legal but probably not meant: a model received by
// a source that no target pushes.
func (l *loader) warnings(cfg *Config) Errors {
	var out Errors
	for _, s := range cfg.Systems {
		if s.Spec == nil || s.Spec.Warn == nil {
			continue
		}
		for _, msg := range s.Spec.Warn(s) {
			out = append(out, &Error{Pos: s.Pos, Key: s.Name, Msg: msg})
		}
	}
	for _, s := range cfg.Sources() {
		for _, loc := range s.Receive.Locations() {
			for _, rule := range s.Receive.Rules(loc) {
				title := rule.Model().Title
				if len(cfg.TargetsOf(title)) == 0 {
					out = append(out, &Error{Pos: s.PosOf("receive_mixer", loc, title), Key: keyPath(s.Name, "receive_mixer", loc, title),
						Msg: "no system pushes model " + strconv.Quote(title) + ": its objects will not be published"})
				}
			}
		}
	}
	return append(out, unfilledSearchKeys(cfg)...).sorted()
}

// unfilledSearchKeys warns of a push mixer location none of whose search
// keys any receive mixer fills: every object of the model reaches it
// without one, so an upsert inserts a new row (or fails on the key
// column's NOT NULL) and a delete fails.
func unfilledSearchKeys(cfg *Config) Errors {
	filled := map[string]map[string]bool{} // model → the fields some receive mixer fills
	for _, s := range cfg.Sources() {
		for _, loc := range s.Receive.Locations() {
			for _, rule := range s.Receive.Rules(loc) {
				title := rule.Model().Title
				if filled[title] == nil {
					filled[title] = map[string]bool{}
				}
				for _, f := range rule.Fields() {
					filled[title][f.Field] = true
				}
			}
		}
	}
	var out Errors
	for _, t := range cfg.Systems {
		if t.Push == nil {
			continue
		}
		for _, title := range t.Push.Models() {
			if filled[title] == nil {
				continue // no source sends the model: nothing reaches the target
			}
			for _, rule := range t.Push.Rules(title) {
				var names []string
				some := false
				for _, k := range rule.SearchKeys() {
					some = some || k.HasHardcode || filled[title][k.Field]
					names = append(names, strconv.Quote(k.Field))
				}
				if some {
					continue
				}
				out = append(out, &Error{Pos: t.PosOf("push_mixer", title, rule.Location()), Key: keyPath(t.Name, "push_mixer", title, rule.Location()),
					Msg: fmt.Sprintf("no receive mixer fills the search key %s of model %q: its objects reach %s without one, so an upsert inserts a new row and a delete fails; map the field in a receive mixer",
						strings.Join(names, " or "), title, rule.Location())})
			}
		}
	}
	return out
}

func specSetting(spec *Spec, name string) *SettingSpec {
	if spec == nil {
		return nil
	}
	for i := range spec.Settings {
		if spec.Settings[i].Name == name {
			return &spec.Settings[i]
		}
	}
	return nil
}

func sortedCopy(list []string) []string {
	out := append([]string(nil), list...)
	sort.Strings(out)
	return out
}

// IsConfigError reports whether err came from Load.
func IsConfigError(err error) bool {
	var es Errors
	return errors.As(err, &es)
}
