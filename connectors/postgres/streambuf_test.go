package postgres

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/sqlpipe/remix/connectors"
	"github.com/sqlpipe/remix/mixer"
)

// TestSpilledTransactionKeepsValuesOrDeadLettersThem: a streamed
// transaction that spills to disk comes back with the same values; text
// JSON cannot carry (not UTF-8, as a SQL_ASCII database can hold) comes
// back as a change to dead-letter, never altered; JSON values come back
// byte for byte, still JSON values; aborted subtransactions are left out.
func TestSpilledTransactionKeepsValuesOrDeadLettersThem(t *testing.T) {
	t.Parallel()
	s := &Source{sys: testSystem("src", "postgres://unused", nil, nil, map[string]any{SettingMaxTransactionMB: int64(1)}), log: slog.Default()}
	b := s.newStreamBuf(100)
	defer b.close()
	change := func(id string, name any) connectors.Change {
		return connectors.Change{Key: "src/public.items/" + id, Record: mixer.Record{Location: "public.items", Op: mixer.OpUpsert, Complete: true,
			Fields: map[string]any{"id": json.Number(id), "name": name, "big": json.Number("9007199254740993"), "gone": nil,
				"doc": mixer.JSONText(` {"b": 1, "a": 2, "b": "<"} `), "jnull": mixer.JSONText(`null`)}}}
	}
	pad := strings.Repeat("x", 4000)
	for i := 0; i < 400; i++ { // about 1.6 MB: spills past 1 MB
		if err := b.add(100, []connectors.Change{change("1", pad)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.add(100, []connectors.Change{change("2", "caf\xe9")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.add(101, []connectors.Change{change("3", "aborted")}, nil); err != nil {
		t.Fatal(err)
	}
	b.aborted[101] = true
	if err := b.add(100, []connectors.Change{change("4", "last")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.spill(); err != nil { // everything on disk
		t.Fatal(err)
	}
	if b.spilled != 403 {
		t.Fatalf("%d changes spilled, want 403", b.spilled)
	}
	var got []connectors.Change
	if err := b.replay(context.Background(), func(cs []connectors.Change, last bool) error {
		got = append(got, cs...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 402 {
		t.Fatalf("%d changes replayed, want 402 (the aborted one left out)", len(got))
	}
	first, bad, last := got[0], got[400], got[401]
	if first.Err != nil || first.Record.Fields["name"] != pad || first.Record.Fields["big"] != json.Number("9007199254740993") ||
		!first.Record.Complete || first.Key != "src/public.items/1" {
		t.Fatalf("first change came back as %+v", first)
	}
	if v, ok := first.Record.Fields["gone"]; !ok || v != nil {
		t.Fatalf("a null came back as %#v, %v", v, ok)
	}
	if doc, jnull := first.Record.Fields["doc"], first.Record.Fields["jnull"]; doc != mixer.JSONText(` {"b": 1, "a": 2, "b": "<"} `) || jnull != mixer.JSONText(`null`) {
		t.Fatalf("JSON values came back as %#v and %#v", doc, jnull)
	}
	if bad.Err == nil || !strings.Contains(bad.Err.Error(), "column name: text is not valid UTF-8") || bad.Key != "src/public.items/2" {
		t.Fatalf("text that is not UTF-8 came back as %+v (err %v)", bad.Record, bad.Err)
	}
	if last.Record.Fields["name"] != "last" {
		t.Fatalf("last change came back as %+v", last)
	}
}
