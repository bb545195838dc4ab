package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/mixer"
)

// Config says what to reconcile.
type Config struct {
	// Config is the loaded configuration. Required.
	Config *config.Config
	// Coord is the Redis substrate. Required.
	Coord *coord.Client
	// Connectors builds sources and sinks by type. Required.
	Connectors connectors.Registry
	// Source is the source system to reconcile. Required.
	Source string
	// Apply publishes the deletes. Default false: a dry run that changes
	// nothing and locks nothing.
	Apply bool
	// Wait bounds each wait for the targets to apply what the streams hold:
	// before comparing, and after publishing. Default 2m.
	Wait time.Duration
	// Sample is how many keys are shown per target location. Default 10.
	Sample int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Config == nil || c.Coord == nil || c.Connectors == nil || c.Source == "" {
		return errors.New("reconcile: Config, Coord, Connectors and Source are required")
	}
	if c.Wait < 0 || c.Sample < 0 {
		return errors.New("reconcile: Wait and Sample cannot be negative")
	}
	return nil
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.Wait == 0 {
		out.Wait = 2 * time.Minute
	}
	if out.Sample == 0 {
		out.Sample = 10
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

// feeder is one source location whose records become objects of a model.
type feeder struct {
	sys  *config.System
	loc  string
	rule *mixer.ReceiveRule
}

func (f feeder) String() string { return f.sys.Name + " " + f.loc }

// fills returns the receive mapping of a model field, if the rule fills it.
func (f feeder) fills(field string) (mixer.ReceiveField, bool) {
	for _, rf := range f.rule.Fields() {
		if rf.Field == field {
			return rf, true
		}
	}
	return mixer.ReceiveField{}, false
}

// modelPlan is what reconciling one model takes.
type modelPlan struct {
	model    *mixer.Model
	own      feeder
	others   []feeder // other sources' locations of the model
	keyCols  []string // the own location's identity columns
	identity []string // the model fields they map to, in the same order
	targets  []*targetLoc
	skip     string // why the model is left out; "" when it is not
	// deletes are the rows to delete, by partition key.
	deletes map[string]*deletion
}

// targetLoc is one location of one target the model is pushed to.
type targetLoc struct {
	sys     *config.System
	rule    *mixer.PushRule
	compare []string // the search-key fields every source fills
	skip    string
	// What reading it found.
	rows, missing, unidentified int
	sample                      []string
}

func (t *targetLoc) String() string { return t.sys.Name + " " + t.rule.Location() }

// deletion is one delete object to publish.
type deletion struct {
	key    string // partition key: the source row's change key
	fields map[string]any
}

// newPlans works out, from the configuration and the source's row
// identities, what can be reconciled: one plan per model the source fills
// that some target pushes.
func newPlans(ctx context.Context, cfg *Config) ([]*modelPlan, error) {
	src := cfg.Config.System(cfg.Source)
	if src == nil || src.Receive == nil {
		return nil, fmt.Errorf("%s is not a source in this configuration", cfg.Source)
	}
	rk, _, err := sourceListers(cfg, src)
	if err != nil {
		return nil, err
	}
	own := map[string][]feeder{}
	for _, loc := range src.Receive.Locations() {
		for _, rule := range src.Receive.Rules(loc) {
			own[rule.Model().Title] = append(own[rule.Model().Title], feeder{sys: src, loc: loc, rule: rule})
		}
	}
	titles := make([]string, 0, len(own))
	for t := range own {
		titles = append(titles, t)
	}
	sort.Strings(titles)
	var plans []*modelPlan
	for _, title := range titles {
		targets := cfg.Config.TargetsOf(title)
		if len(targets) == 0 {
			continue
		}
		p := &modelPlan{model: own[title][0].rule.Model(), own: own[title][0], deletes: map[string]*deletion{}}
		plans = append(plans, p)
		for _, s := range cfg.Config.Sources() {
			if s.Name == src.Name {
				continue
			}
			for _, loc := range s.Receive.Locations() {
				for _, rule := range s.Receive.Rules(loc) {
					if rule.Model().Title == title {
						p.others = append(p.others, feeder{sys: s, loc: loc, rule: rule})
					}
				}
			}
		}
		if len(own[title]) > 1 {
			var locs []string
			for _, f := range own[title] {
				locs = append(locs, f.loc)
			}
			p.skip = fmt.Sprintf("%s fills it from several locations (%s): a row missing from a target cannot be told to one of them", src.Name, strings.Join(locs, ", "))
			continue
		}
		if p.skip = p.mapIdentity(ctx, rk); p.skip != "" {
			continue
		}
		for _, t := range targets {
			for _, rule := range t.Push.Rules(title) {
				p.targets = append(p.targets, p.target(cfg, t, rule))
			}
		}
	}
	return plans, nil
}

// sourceListers returns what reconcile needs of a source's connector.
func sourceListers(cfg *Config, sys *config.System) (connectors.RowKeyer, connectors.KeyLister, error) {
	conn := cfg.Connectors[sys.Type]
	if conn.NewSource == nil {
		return nil, nil, fmt.Errorf("%s sources cannot be read by this build", sys.Type)
	}
	src, err := conn.NewSource(sys, connectors.SourceDeps{Logger: cfg.Logger})
	if err != nil {
		return nil, nil, err
	}
	kl, ok := src.(connectors.KeyLister)
	rk, ok2 := src.(connectors.RowKeyer)
	if !ok || !ok2 {
		return nil, nil, fmt.Errorf("%s sources cannot list their rows, so reconcile cannot compare %s with its targets", sys.Type, sys.Name)
	}
	return rk, kl, nil
}

// mapIdentity finds the model fields the own location's identity columns
// map to; it returns why the model cannot be reconciled, or "".
func (p *modelPlan) mapIdentity(ctx context.Context, rk connectors.RowKeyer) string {
	cols, err := rk.IdentityFields(ctx, p.own.loc)
	if err != nil {
		return fmt.Sprintf("reading the identity of %s: %v", p.own, err)
	}
	p.keyCols = cols
	for _, c := range cols {
		field := ""
		for _, rf := range p.own.rule.Fields() {
			if !rf.HasHardcode && rf.Source.Len() == 1 && rf.Source.Head() == c {
				field = rf.Field
				break
			}
		}
		if field == "" {
			return fmt.Sprintf("the receive mixer of %s maps no model field from its key column %s, so a target row cannot be traced back to a source row", p.own, c)
		}
		p.identity = append(p.identity, field)
	}
	return ""
}

// target plans one target location: what to compare it on, and whether
// it can be read and traced back to the source.
func (p *modelPlan) target(cfg *Config, sys *config.System, rule *mixer.PushRule) *targetLoc {
	t := &targetLoc{sys: sys, rule: rule}
	feeders := append([]feeder{p.own}, p.others...)
	var keys []string
	for _, k := range rule.SearchKeys() {
		keys = append(keys, k.Field)
		all := true
		for _, f := range feeders {
			_, ok := f.fills(k.Field)
			all = all && ok
		}
		if all {
			t.compare = append(t.compare, k.Field)
		}
	}
	if len(t.compare) == 0 {
		t.skip = fmt.Sprintf("none of its search keys (%s) is filled by every source of %s", strings.Join(keys, ", "), p.model.Title)
		return t
	}
	for _, f := range p.identity {
		if pf, ok := pushField(rule, f); !ok || pf.HasHardcode {
			t.skip = fmt.Sprintf("it does not store model field %s, which the source's row identity maps to", f)
			return t
		}
	}
	conn := cfg.Connectors[sys.Type]
	if conn.NewSink == nil {
		t.skip = fmt.Sprintf("%s targets cannot be written by this build", sys.Type)
		return t
	}
	sink, err := conn.NewSink(sys, connectors.SinkDeps{Logger: cfg.Logger})
	if err != nil {
		t.skip = err.Error()
		return t
	}
	if _, ok := sink.(connectors.KeyLister); !ok {
		t.skip = fmt.Sprintf("%s targets cannot list their rows", sys.Type)
	}
	return t
}

func pushField(rule *mixer.PushRule, field string) (mixer.PushField, bool) {
	for _, f := range rule.Fields() {
		if f.Field == field && !f.HasHardcode {
			return f, true
		}
	}
	return mixer.PushField{}, false
}

// live returns the target locations that are not left out.
func (p *modelPlan) live() []*targetLoc {
	var out []*targetLoc
	for _, t := range p.targets {
		if t.skip == "" {
			out = append(out, t)
		}
	}
	return out
}

// lockSystems lists the sources whose reader locks an apply holds: the
// reconciled source and every other source of a model it reconciles.
func lockSystems(source string, plans []*modelPlan) []string {
	set := map[string]bool{source: true}
	for _, p := range plans {
		if p.skip != "" || len(p.live()) == 0 {
			continue
		}
		for _, f := range p.others {
			set[f.sys.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
