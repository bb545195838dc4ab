package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// fakeSystem is an in-memory system: tables of rows, the first column of
// each table its identity.
type fakeSystem struct {
	name   string
	tables map[string][]map[string]any
	keys   map[string][]string
}

func (f *fakeSystem) ListKeys(_ context.Context, loc string, fields []string, page func([]map[string]any) error) error {
	var rows []map[string]any
	for _, r := range f.tables[loc] {
		row := map[string]any{}
		for _, c := range fields {
			row[c] = r[c]
		}
		rows = append(rows, row)
	}
	return page(rows)
}

func (f *fakeSystem) IdentityFields(_ context.Context, loc string) ([]string, error) {
	return f.keys[loc], nil
}

func (f *fakeSystem) RowKey(loc string, values []any) (string, error) {
	parts := make([]string, len(values))
	for i, v := range values {
		if v == nil {
			return "", fmt.Errorf("no key value")
		}
		parts[i] = fmt.Sprint(v)
	}
	return f.name + "/" + loc + "/" + strings.Join(parts, ","), nil
}

// The fake is its own Source and Sink; only listing is used here.
func (f *fakeSystem) Open(context.Context) error                     { return nil }
func (f *fakeSystem) Next(context.Context) (connectors.Batch, error) { return connectors.Batch{}, nil }
func (f *fakeSystem) Confirm(context.Context, string) error          { return nil }
func (f *fakeSystem) Close(context.Context) error                    { return nil }
func (f *fakeSystem) Write(context.Context, []mixer.TargetRecord, []connectors.Fence) error {
	return nil
}

type bundle struct {
	cfg     *Config
	systems map[string]*fakeSystem
}

// setup builds a configuration of fake systems: shop and crm fill model
// person (shop from two columns with a text key for the model's integer
// id), warehouse pushes it.
func setup(t *testing.T) *bundle {
	t.Helper()
	model, err := mixer.CompileModel("mem:///person.json", []byte(`{"title": "person", "type": "object", "properties": {
		"id": {"type": "integer"}, "email": {"type": ["string", "null"]}, "name": {"type": "string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{systems: map[string]*fakeSystem{}}
	reg := connectors.Registry{"fake": {
		NewSource: func(s *config.System, _ connectors.SourceDeps) (connectors.Source, error) {
			return b.systems[s.Name], nil
		},
		NewSink: func(s *config.System, _ connectors.SinkDeps) (connectors.Sink, error) { return b.systems[s.Name], nil },
	}}
	recv := func(loc string, fields ...mixer.ReceiveField) *mixer.Receiver {
		rule, err := mixer.NewReceiveRule(model, fields)
		if err != nil {
			t.Fatal(err)
		}
		r := mixer.NewReceiver()
		r.Add(loc, rule)
		return r
	}
	rf := func(src, field string) mixer.ReceiveField {
		return mixer.ReceiveField{Source: mixer.MustPath(src), Field: field}
	}
	rule, err := mixer.NewPushRule(model, "public.people", []mixer.PushField{
		{Field: "id", Target: mixer.MustPath("person_key"), SearchKey: true},
		{Field: "email", Target: mixer.MustPath("mail"), SearchKey: true},
		{Field: "name", Target: mixer.MustPath("name")},
	})
	if err != nil {
		t.Fatal(err)
	}
	push := mixer.NewPushMixer()
	push.Add("person", rule)
	cfg := &config.Config{Models: map[string]*mixer.Model{"person": model}, Systems: []*config.System{
		{Name: "crm", Type: "fake", Receive: recv("public.contacts", rf("contact_id", "id"), rf("full_name", "name"))},
		{Name: "shop", Type: "fake", Receive: recv("public.users", rf("uid", "id"), rf("mail", "email"), rf("nick", "name"))},
		{Name: "warehouse", Type: "fake", Push: push},
	}}
	b.systems["shop"] = &fakeSystem{name: "shop", keys: map[string][]string{"public.users": {"uid"}}, tables: map[string][]map[string]any{
		"public.users": {{"uid": "1", "mail": "a@x", "nick": "A"}, {"uid": "2", "mail": nil, "nick": "B"}}}}
	b.systems["crm"] = &fakeSystem{name: "crm", keys: map[string][]string{"public.contacts": {"contact_id"}}, tables: map[string][]map[string]any{
		"public.contacts": {{"contact_id": json.Number("1001"), "full_name": "C"}}}}
	b.systems["warehouse"] = &fakeSystem{name: "warehouse", tables: map[string][]map[string]any{"public.people": {
		{"person_key": json.Number("1"), "mail": "a@x"},  // shop's
		{"person_key": json.Number("2"), "mail": nil},    // shop's
		{"person_key": json.Number("1001"), "mail": nil}, // crm's
		{"person_key": json.Number("61"), "mail": "g@x"}, // no source's
		{"person_key": nil, "mail": nil},                 // cannot be told
		{"person_key": json.Number("62"), "mail": "a@x"}, // the shop holds its email
	}}}
	b.cfg = &Config{Config: cfg, Connectors: reg, Source: "shop", Sample: 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return b
}

func (b *bundle) run(t *testing.T) []*modelPlan {
	t.Helper()
	ctx := context.Background()
	plans, err := newPlans(ctx, b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plans {
		if p.skip != "" {
			continue
		}
		set, err := p.readSources(ctx, b.cfg)
		if err != nil {
			p.skip = err.Error()
			continue
		}
		for _, tl := range p.live() {
			if err := p.readTarget(ctx, b.cfg, tl, set); err != nil {
				t.Fatal(err)
			}
		}
	}
	return plans
}

// TestFanInDeletesOnlyWhatNoSourceHolds: with two sources of a model, a
// target row is deleted only when neither holds any of its keys; rows
// without a key value are kept; the delete carries the shop's change key.
func TestFanInDeletesOnlyWhatNoSourceHolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The crm fills no email: the comparison is on id alone, and 62,
	// whose email the shop holds, goes too.
	plans := b.run(t)
	if len(plans) != 1 || plans[0].skip != "" {
		t.Fatalf("plans: %+v", plans)
	}
	p := plans[0]
	tl := p.targets[0]
	if !slices.Equal(tl.compare, []string{"id"}) || tl.rows != 6 || tl.missing != 2 || tl.unidentified != 1 {
		t.Fatalf("compare %v, rows %d, missing %d, unidentified %d", tl.compare, tl.rows, tl.missing, tl.unidentified)
	}
	if got := keys(p.deletes); !slices.Equal(got, []string{"shop/public.users/61", "shop/public.users/62"}) {
		t.Fatalf("deletes: %v", got)
	}
	if got := p.deletes["shop/public.users/61"].fields; len(got) != 1 || got["id"] != json.Number("61") {
		t.Fatalf("delete fields: %v", got)
	}
	if !slices.Equal(tl.sample, []string{"person_key=61", "person_key=62"}) {
		t.Fatalf("sample: %v", tl.sample)
	}
	if got := lockSystems("shop", plans); !slices.Equal(got, []string{"crm", "shop"}) {
		t.Fatalf("locks: %v", got)
	}
}

// TestAloneComparesOnEverySearchKey: without the crm, the email is compared
// too: row 62 carries an email the shop holds and is kept.
func TestAloneComparesOnEverySearchKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cfg.Config.Systems = slices.DeleteFunc(b.cfg.Config.Systems, func(s *config.System) bool { return s.Name == "crm" })
	p := b.run(t)[0]
	tl := p.targets[0]
	if !slices.Equal(tl.compare, []string{"id", "email"}) || tl.missing != 2 {
		t.Fatalf("compare %v, missing %d (%v)", tl.compare, tl.missing, tl.sample)
	}
	if got := keys(p.deletes); !slices.Equal(got, []string{"shop/public.users/1001", "shop/public.users/61"}) {
		t.Fatalf("deletes: %v", got)
	}
	if d := p.deletes["shop/public.users/61"].fields; d["email"] != "g@x" || d["id"] != json.Number("61") {
		t.Fatalf("delete fields: %v", d)
	}
}

// TestUnattributableModelsAreLeftOut: what cannot be traced back to the
// source is never deleted.
func TestUnattributableModelsAreLeftOut(t *testing.T) {
	t.Parallel()
	t.Run("key not rebuilt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.systems["shop"].tables["public.users"][0]["uid"] = json.Number("1.0") // the model holds 1: its key would be .../1
		p := b.run(t)[0]
		if !strings.Contains(p.skip, "cannot be rebuilt from their model values") || len(p.deletes) != 0 {
			t.Fatalf("skip %q, deletes %v", p.skip, keys(p.deletes))
		}
	})
	t.Run("identity not mapped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.systems["shop"].keys["public.users"] = []string{"tenant", "uid"}
		p := b.run(t)[0]
		if !strings.Contains(p.skip, "maps no model field from its key column tenant") {
			t.Fatalf("skip %q", p.skip)
		}
	})
	t.Run("no common search key", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		model := b.cfg.Config.Models["person"]
		rule, _ := mixer.NewReceiveRule(model, []mixer.ReceiveField{{Source: mixer.MustPath("mail"), Field: "email"}, {Source: mixer.MustPath("full_name"), Field: "name"}})
		crm := mixer.NewReceiver()
		crm.Add("public.contacts", rule)
		b.cfg.Config.System("crm").Receive = crm
		p := b.run(t)[0]
		if tl := p.targets[0]; !slices.Equal(tl.compare, []string{"email"}) || tl.skip != "" || tl.missing != 1 {
			t.Fatalf("compare %v, skip %q, missing %d", tl.compare, tl.skip, tl.missing)
		}
	})
}

func keys(m map[string]*deletion) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
