package mixer

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestEnvelopeEncodingIsStable(t *testing.T) {
	t.Parallel()
	e := &Envelope{
		Object: Object{Model: "product", Op: OpUpsert, Fields: map[string]any{
			"id": json.Number("9007199254740993"), "name": "Gold \"Plan\" <b>\n", "price": json.Number("12.50"),
			"stripe_id": nil, "active": true, "big": json.Number("1e+06"),
		}},
		Source: "prod-db", Location: "public.products", Position: "0/16B3748",
		CommitTime: time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC),
	}
	got, err := AppendEnvelope(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "envelope_v1.golden")
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		_ = os.WriteFile(golden, append(got, '\n'), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got)+"\n" != string(want) {
		t.Fatalf("envelope encoding changed:\n got %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("not valid JSON")
	}
	back, err := DecodeEnvelope(got)
	if err != nil {
		t.Fatal(err)
	}
	e.Fields["big"] = json.Number("1000000")
	if !reflect.DeepEqual(back.Fields, e.Fields) || back.Op != OpUpsert || back.Source != e.Source || back.Location != e.Location ||
		back.Position != e.Position || !back.CommitTime.Equal(e.CommitTime) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
	}
	for _, op := range []Op{OpDelete, OpTruncate} {
		b, _ := AppendEnvelope(nil, &Envelope{Object: Object{Model: "m", Op: op}})
		if d, err := DecodeEnvelope(b); err != nil || d.Op != op || d.Fields == nil {
			t.Fatalf("op %v: %+v %v", op, d, err)
		}
	}
	if _, err := DecodeEnvelope([]byte(`{"v":2}`)); err == nil {
		t.Fatal("a future version decoded")
	}
}

func FuzzEnvelopeRoundTrip(f *testing.F) {
	f.Add("name", "Gold", "12.5", true, `{"a": 1, "a": [2, "]"]}`)
	f.Add("a\"b", "\x00\u2028<>&", "-0", false, " null\n")
	f.Add("k", "s", "1", true, `"\"]\\"`)
	f.Fuzz(func(t *testing.T, k, s, num string, b bool, js string) {
		if !utf8.ValidString(k) || !utf8.ValidString(s) {
			return // the receive mixer refuses such strings before they get here
		}
		n, err := NormalizeNumber(num)
		if err != nil {
			n = "0"
		}
		fields := map[string]any{k: s, k + "n": n, k + "b": b, k + "z": nil}
		if j, err := ParseJSONText([]byte(js)); err == nil {
			fields[k+"j"] = j
		}
		e := &Envelope{Object: Object{Model: "m", Op: OpUpsert, Fields: fields}, Source: s, Location: k}
		enc, err := AppendEnvelope(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(enc) {
			t.Fatalf("invalid JSON %q", enc)
		}
		back, err := DecodeEnvelope(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Fields, e.Fields) || back.Source != s || back.Location != k {
			t.Fatalf("round trip of %q: %#v", enc, back)
		}
	})
}

func BenchmarkEnvelope(b *testing.B) {
	e := &Envelope{Object: Object{Model: "product", Op: OpUpsert, Fields: map[string]any{
		"id": json.Number("42"), "name": "Gold Plan", "price": json.Number("1000"), "stripe_id": "prod_NWjs8kKbJWmuuc"}},
		Source: "prod-db", Location: "public.products", Position: "0/16B3748", CommitTime: time.Now()}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendEnvelope(buf[:0], e)
		if _, err := DecodeEnvelope(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendEnvelope is what an ingest pays per object to encode it.
func BenchmarkAppendEnvelope(b *testing.B) {
	e := &Envelope{Object: Object{Model: "item", Op: OpUpsert, Fields: map[string]any{
		"id": json.Number("42"), "name": "item 42", "qty": json.Number("42"), "price": json.Number("0.42"),
		"created_at": "2026-12-06T07:00:00.123456Z"}},
		Source: "src", Location: "public.items", Position: "0/16B3748", CommitTime: time.Now()}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendEnvelope(buf[:0], e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEnvelope is what a pusher pays per object to read it.
func BenchmarkDecodeEnvelope(b *testing.B) {
	e := &Envelope{Object: Object{Model: "item", Op: OpUpsert, Fields: map[string]any{
		"id": json.Number("42"), "name": "item 42", "qty": json.Number("42"), "price": json.Number("0.42"), "note": nil}},
		Source: "src", Location: "public.items", Position: "0/16B3748", CommitTime: time.Now()}
	buf, err := AppendEnvelope(nil, e)
	if err != nil {
		b.Fatal(err)
	}
	// Reused maps hands each envelope's fields back, as a pusher does once
	// it has mapped the object to target records.
	for _, reuse := range []bool{false, true} {
		name := "new maps"
		if reuse {
			name = "reused maps"
		}
		b.Run(name, func(b *testing.B) {
			var maps *FieldMaps
			if reuse {
				maps = &FieldMaps{}
			}
			b.ReportAllocs()
			for b.Loop() {
				e, err := decodeEnvelopeWith(buf, maps)
				if err != nil {
					b.Fatal(err)
				}
				maps.Put(e.Fields)
			}
		})
	}
}

// TestEnvelopeNamesThatShareAPlace: the decoder remembers the name it read
// at each place of an object; names alike in place, length and end bytes
// must still each be read as themselves, in any order.
func TestEnvelopeNamesThatShareAPlace(t *testing.T) {
	t.Parallel()
	names := []string{"axz", "ayz", "a\u0078z", "azz", "axz"}
	for round := 0; round < 3; round++ {
		for _, n := range names {
			b := []byte(`{"v":1,"m":"m` + n + `","op":"u","f":{"` + n + `":1,"b` + n + `":"` + n + `"},"s":"s","l":"l"}`)
			e, err := DecodeEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			want, err := decodeEnvelopeJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("round %d, %s: got %#v, want %#v", round, n, e, want)
			}
		}
	}
}

// FuzzEnvelopeFastDecoder checks that the fast decoder, whenever it accepts
// an input, reads exactly what encoding/json reads.
func FuzzEnvelopeFastDecoder(f *testing.F) {
	f.Add([]byte(`{"v":1,"m":"product","op":"u","f":{"a":1,"b":"x\u00e9\n","c":null,"d":true,"e":-0.50},"s":"db","l":"public.t","p":"0/1","t":1700000000000000}`))
	f.Add([]byte(`{"v":1,"m":"m","op":"d","f":{},"s":"","l":""}`))
	f.Add([]byte(`{"v":1,"m":"m","op":"t","f":{"k":"\ud83d\ude00"},"s":"s","l":"l"}`))
	f.Add([]byte(`{"v":1,"m":"m","op":"u","f":{"n":1e5,"o":{"x":1}},"s":"s","l":"l"}`))
	f.Add([]byte(`{"v":2,"m":"m","op":"u","f":{"j":[ {"a":[1,"]}"],"a":null} ],"k":[null],"s":["\"]"]},"s":"s","l":"l"}`))
	f.Add([]byte(`{"v":2,"m":"m","op":"u","f":{"j":[1,2],"k":[],"l":[[1]}],"m":["\xff"]},"s":"s","l":"l"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeEnvelopeFast(b, nil)
		if !ok {
			return
		}
		slow, err := decodeEnvelopeJSON(b)
		if err != nil {
			t.Fatalf("fast decoder accepted what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decoders disagree on %q:\nfast %#v\nslow %#v", b, fast, slow)
		}
		var maps FieldMaps
		maps.Put(map[string]any{"stale": 1})
		text, err := DecodeEnvelopeText(string(b), &maps)
		if err != nil || !reflect.DeepEqual(text, slow) {
			t.Fatalf("decoding %q as text into a reused map: %v\n%#v\nslow %#v", b, err, text, slow)
		}
	})
}

// TestEnvelopeCarriesItsOrigin: a change Remix wrote into its source on
// another system's behalf keeps that system as its origin (version 3); an
// envelope without one stays at the version older builds read.
func TestEnvelopeCarriesItsOrigin(t *testing.T) {
	t.Parallel()
	e := Envelope{Object: Object{Model: "product", Op: OpUpsert, Fields: map[string]any{"id": json.Number("1")}}, Source: "shop", Location: "public.products", Origin: "stripe"}
	b, err := AppendEnvelope(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"v":3,`) || !strings.Contains(string(b), `"o":"stripe"`) {
		t.Fatalf("encoded %s", b)
	}
	for name, decode := range map[string]func([]byte) (Envelope, error){"fast": DecodeEnvelope, "json": decodeEnvelopeJSON} {
		got, err := decode(b)
		if err != nil || got.Origin != "stripe" || got.OriginSystem() != "stripe" {
			t.Fatalf("%s: %+v, %v", name, got, err)
		}
	}
	e.Origin, e.Created = "", true
	b, _ = AppendEnvelope(nil, &e)
	if got, err := DecodeEnvelope(b); !strings.HasPrefix(string(b), `{"v":3,`) || err != nil || !got.Created {
		t.Fatalf("created: %s %+v %v", b, got, err)
	}
	if got, err := decodeEnvelopeJSON(b); err != nil || !got.Created {
		t.Fatalf("created (json): %+v %v", got, err)
	}
	e.Created = false
	b, _ = AppendEnvelope(nil, &e)
	got, err := DecodeEnvelope(b)
	if !strings.HasPrefix(string(b), `{"v":1,`) || err != nil || got.OriginSystem() != "shop" {
		t.Fatalf("without an origin: %s %+v %v", b, got, err)
	}
}
