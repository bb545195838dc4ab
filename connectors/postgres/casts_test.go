package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/internal/testenv"
	"github.com/sqlpipe/remix/mixer"
)

// fitBundle is a target with character, bit, domain, numeric and timestamp
// columns, a sink that writes to it, and the rows it holds.
type fitBundle struct {
	ctx  context.Context
	conn *pgx.Conn
	sink *Sink
	rule *mixer.PushRule
	loc  string
}

func setupFit(t *testing.T, keyType string) *fitBundle {
	t.Helper()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE DOMAIN short_name AS varchar(5)`,
		`CREATE TABLE fit (k `+keyType+` PRIMARY KEY, nick varchar(5), code char(5), flags bit(3), mask varbit(4),
			alias short_name, tags varchar(5)[], amount numeric(5,2), at timestamp(0))`)
	model, err := mixer.CompileModel("mem:///fit.json", []byte(`{"title": "fit", "properties": {
		"k": {"type": "string"}, "nick": {"type": ["string", "null"]}, "code": {"type": "string"}, "flags": {"type": "string"},
		"mask": {"type": "string"}, "alias": {"type": "string"}, "tags": {"type": "string"}, "amount": {"type": "number"},
		"at": {"type": "string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var fields []mixer.PushField
	for _, f := range model.Fields() {
		fields = append(fields, mixer.PushField{Field: f, Target: mixer.MustPath(f), SearchKey: f == "k"})
	}
	sink, rule := openSink(t, url, model, "public.fit", fields)
	return &fitBundle{ctx: context.Background(), conn: conn, sink: sink, rule: rule, loc: "public.fit"}
}

func (b *fitBundle) rec(t *testing.T, op mixer.Op, fields map[string]any) mixer.TargetRecord {
	t.Helper()
	r, err := b.rule.Apply(&mixer.Object{Model: "fit", Op: op, Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rows lists the table as k=nick pairs in key order.
func (b *fitBundle) rows(t *testing.T) string {
	t.Helper()
	var s string
	if err := b.conn.QueryRow(b.ctx, `SELECT coalesce(string_agg(k::text || '=' || coalesce(nick, ''), ',' ORDER BY k), '') FROM fit`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// refused checks that a write failed for record index, as a bad record.
func refused(t *testing.T, err error, index int, reason string) {
	t.Helper()
	var re *connectors.RecordError
	if !errors.As(err, &re) || !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("error %v (%T): want a *RecordError wrapping ErrPermanent", err, err)
	}
	if re.Index != index || !strings.Contains(err.Error(), reason) {
		t.Fatalf("error %v: want record %d refused with %q", err, index, reason)
	}
}

// withoutLengthChecks turns the sink's own length checks off, so that a
// test sees what PostgreSQL does with the statements the sink sends.
func withoutLengthChecks(s *Sink) {
	for _, t := range s.tables {
		for _, c := range t.cols {
			c.limit = lengthLimit{}
		}
	}
}

// Two source keys that differ after the fifth character must not collapse
// into one row of a varchar(5) key, and a delete of one must not delete
// the row of another: both are refused, the target untouched.
func TestSinkRefusesKeysTooLongForVarchar(t *testing.T) {
	t.Parallel()
	for _, precheck := range []bool{true, false} {
		b := setupFit(t, "varchar(5)")
		if !precheck {
			withoutLengthChecks(b.sink)
		}
		exec(t, b.conn, `INSERT INTO fit (k, nick) VALUES ('abcde', 'orig')`)
		err := b.sink.Write(b.ctx, []mixer.TargetRecord{
			b.rec(t, mixer.OpUpsert, map[string]any{"k": "abcde-1", "nick": "one"}),
			b.rec(t, mixer.OpUpsert, map[string]any{"k": "abcde-2", "nick": "two"}),
		}, nil)
		if precheck {
			refused(t, err, 0, "value too long for type character varying(5)")
		} else if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "SQLSTATE 22001") {
			t.Fatalf("batch of too long keys: %v, want PostgreSQL's 22001 as permanent", err)
		}
		for _, k := range []string{"abcde-1", "abcde-2"} {
			err := b.sink.Write(b.ctx, []mixer.TargetRecord{b.rec(t, mixer.OpUpsert, map[string]any{"k": k, "nick": "x"})}, nil)
			refused(t, err, 0, "value too long for type character varying(5)")
		}
		err = b.sink.Write(b.ctx, []mixer.TargetRecord{b.rec(t, mixer.OpDelete, map[string]any{"k": "abcde-2"})}, nil)
		if precheck {
			refused(t, err, 0, "value too long")
		} else if err != nil {
			t.Fatalf("delete compared as varchar: %v", err) // matches nothing
		}
		if got := b.rows(t); got != "abcde=orig" {
			t.Fatalf("precheck %v: rows %q, want the row abcde untouched", precheck, got)
		}
	}
}

func TestSinkRefusesValuesThatDoNotFit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		field, value, reason string
		sinkOnly             bool // PostgreSQL's assignment would cut the value without a word
	}{
		{"nick", "toolongnick", "value too long for type character varying(5)", false},
		{"nick", "abcde  ", "value too long for type character varying(5)", true},
		{"nick", "ééééé€", "value too long for type character varying(5)", false},
		{"code", "abcdef", "value too long for type character(5)", false},
		{"flags", "1011", "bit string length 4 does not match type bit(3)", false},
		{"flags", "10", "bit string length 2 does not match type bit(3)", false},
		{"mask", "10110", "bit string too long for type bit varying(4)", false},
		{"mask", "xff", "bit string too long for type bit varying(4)", false},
		{"alias", "abcdefg", "value too long for type character varying(5)", false}, // a domain over varchar(5)
		{"tags", "{abcdefg}", "value too long for type character varying(5)", false},
		{"amount", "12345.6", "numeric field overflow", false},
	}
	for _, precheck := range []bool{true, false} {
		b := setupFit(t, "text")
		if !precheck {
			withoutLengthChecks(b.sink)
		}
		for _, c := range cases {
			if c.sinkOnly && !precheck {
				continue
			}
			err := b.sink.Write(b.ctx, []mixer.TargetRecord{b.rec(t, mixer.OpUpsert, map[string]any{"k": "row", c.field: c.value})}, nil)
			refused(t, err, 0, c.reason)
		}
		if got := b.rows(t); got != "" {
			t.Fatalf("rows %q written by refused records", got)
		}
	}
}

// What fits is written as the column's own assignment writes it: char(n)
// pads and drops trailing spaces, numeric scale and timestamp precision
// round.
func TestSinkWritesWhatFits(t *testing.T) {
	t.Parallel()
	b := setupFit(t, "text")
	err := b.sink.Write(b.ctx, []mixer.TargetRecord{b.rec(t, mixer.OpUpsert, map[string]any{
		"k": "row", "nick": "abcde", "code": "abc   ", "flags": "101", "mask": "x9", "alias": "ab", "tags": "{a,bcde}",
		"amount": json.Number("1.239"), "at": "2024-01-02T03:04:05.6"})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := b.conn.QueryRow(b.ctx, `SELECT concat_ws('|', nick, code || '.', flags, mask, alias, tags, amount, at) FROM fit`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "abcde|abc.|101|1001|ab|{a,bcde}|1.24|2024-01-02 03:04:06"; got != want {
		t.Fatalf("row = %q, want %q", got, want)
	}
}

// A character(n) key keeps its padding semantics: a key without the
// padding finds the padded row, in an upsert and in a delete; a key too
// long, even by characters other than spaces, finds nothing.
func TestSinkCharacterKeys(t *testing.T) {
	t.Parallel()
	for _, precheck := range []bool{true, false} {
		b := setupFit(t, "char(5)")
		if !precheck {
			withoutLengthChecks(b.sink)
		}
		write := func(recs ...mixer.TargetRecord) error { return b.sink.Write(b.ctx, recs, nil) }
		if err := write(b.rec(t, mixer.OpUpsert, map[string]any{"k": "ab", "nick": "one"})); err != nil {
			t.Fatal(err)
		}
		if err := write(b.rec(t, mixer.OpUpsert, map[string]any{"k": "ab   ", "nick": "two"})); err != nil {
			t.Fatal(err)
		}
		if got := b.rows(t); got != "ab=two" {
			t.Fatalf("rows %q: a padded key must find its row", got)
		}
		exec(t, b.conn, `INSERT INTO fit (k, nick) VALUES ('abcde', 'keep')`)
		err := write(b.rec(t, mixer.OpDelete, map[string]any{"k": "abcdef"}))
		if precheck {
			refused(t, err, 0, "value too long for type character(5)")
		} else if err != nil {
			t.Fatal(err)
		}
		if err := write(b.rec(t, mixer.OpDelete, map[string]any{"k": "ab"})); err != nil {
			t.Fatal(err)
		}
		if got := b.rows(t); got != "abcde=keep" {
			t.Fatalf("precheck %v: rows %q", precheck, got)
		}
	}
}

// Bit keys: a delete of a longer bit string does not find the row of a
// shorter one (an explicit cast to bit varying(3) would cut it to match).
func TestSinkBitKeys(t *testing.T) {
	t.Parallel()
	b := setupFit(t, "varbit(3)")
	withoutLengthChecks(b.sink)
	exec(t, b.conn, `INSERT INTO fit (k, nick) VALUES (B'101', 'keep')`)
	if err := b.sink.Write(b.ctx, []mixer.TargetRecord{b.rec(t, mixer.OpDelete, map[string]any{"k": "1011"})}, nil); err != nil {
		t.Fatal(err)
	}
	err := b.sink.Write(b.ctx, []mixer.TargetRecord{b.rec(t, mixer.OpUpsert, map[string]any{"k": "1011", "nick": "cut"})}, nil)
	refused(t, err, 0, "bit string too long for type bit varying(3)")
	if got := b.rows(t); got != "101=keep" {
		t.Fatalf("rows %q", got)
	}
}

// A numeric key rounds under the upsert's assignment, and the delete
// compares it rounded the same way, so the delete finds the upserted row.
func TestSinkNumericKeysRoundAlike(t *testing.T) {
	t.Parallel()
	b := setupFit(t, "numeric(5,2)")
	if err := b.sink.Write(b.ctx, []mixer.TargetRecord{b.rec(t, mixer.OpUpsert, map[string]any{"k": "1.239", "nick": "n"})}, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.rows(t); got != "1.24=n" {
		t.Fatalf("rows %q", got)
	}
	if err := b.sink.Write(b.ctx, []mixer.TargetRecord{b.rec(t, mixer.OpDelete, map[string]any{"k": "1.239"})}, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.rows(t); got != "" {
		t.Fatalf("rows %q after the delete", got)
	}
}

// A fence table made by hand with a length on fence_key would refuse or
// merge fence keys: the sink does not open on it.
func TestSinkRefusesFenceKeysThatMayNotFit(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	conn := connect(t, url)
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY)`,
		`CREATE TABLE public.remix_fences (fence_key varchar(10) PRIMARY KEY, token bigint NOT NULL CONSTRAINT remix_fence_current CHECK (token >= 0))`)
	model, err := mixer.CompileModel("mem:///item.json", []byte(`{"title": "item", "properties": {"id": {"type": "integer"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rule, err := mixer.NewPushRule(model, "public.items", []mixer.PushField{{Field: "id", Target: mixer.MustPath("id"), SearchKey: true}})
	if err != nil {
		t.Fatal(err)
	}
	push := mixer.NewPushMixer()
	push.Add("item", rule)
	sink, _ := NewSink(testSystem("target", url, nil, push, nil), connectors.SinkDeps{})
	err = sink.Open(context.Background())
	t.Cleanup(func() { sink.Close(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "fence_key is character varying(10)") {
		t.Fatalf("Open = %v, want the fence_key type refused", err)
	}
}

func TestLengthLimitCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		l    lengthLimit
		text string
		ok   bool
	}{
		{lengthLimit{limitVarchar, 3, "t"}, "abc", true},
		{lengthLimit{limitVarchar, 3, "t"}, "abcd", false},
		{lengthLimit{limitVarchar, 3, "t"}, "ab ", true},
		{lengthLimit{limitVarchar, 3, "t"}, "abc ", false},
		{lengthLimit{limitVarchar, 3, "t"}, "ééé", true}, // six bytes, three characters
		{lengthLimit{limitBPChar, 3, "t"}, "abc   ", true},
		{lengthLimit{limitBPChar, 3, "t"}, "ab c", false},
		{lengthLimit{limitBit, 3, "t"}, "101", true},
		{lengthLimit{limitBit, 3, "t"}, "b101", true},
		{lengthLimit{limitBit, 4, "t"}, "xA", true},
		{lengthLimit{limitBit, 3, "t"}, "xA", false},
		{lengthLimit{limitBit, 3, "t"}, "1", false},
		{lengthLimit{limitBit, 3, "t"}, "12", true}, // not a bit string: PostgreSQL says why
		{lengthLimit{limitVarbit, 3, "t"}, "", true},
		{lengthLimit{limitVarbit, 3, "t"}, "1111", false},
		{lengthLimit{}, strings.Repeat("x", 100), true},
	}
	for _, c := range cases {
		if err := c.l.check(c.text); (err == nil) != c.ok {
			t.Errorf("%+v.check(%q) = %v, want ok %v", c.l, c.text, err, c.ok)
		}
	}
}

// Two keys that the column's assignment makes one row cannot go in one
// statement; the batch is refused as permanent, so the pusher splits it
// (rather than retrying it for ever), and alone each applies, in order.
func TestSinkKeysThatMeetAtTheTarget(t *testing.T) {
	t.Parallel()
	b := setupFit(t, "numeric(5,2)")
	recs := []mixer.TargetRecord{
		b.rec(t, mixer.OpUpsert, map[string]any{"k": "1.239", "nick": "first"}),
		b.rec(t, mixer.OpUpsert, map[string]any{"k": "1.241", "nick": "last"}),
	}
	err := b.sink.Write(b.ctx, recs, nil)
	if !errors.Is(err, connectors.ErrPermanent) || errors.Is(err, connectors.ErrUnavailable) {
		t.Fatalf("batch of keys that meet: %v, want permanent (split by the pusher)", err)
	}
	for _, r := range recs {
		if err := b.sink.Write(b.ctx, []mixer.TargetRecord{r}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.rows(t); got != "1.24=last" {
		t.Fatalf("rows %q", got)
	}
}
