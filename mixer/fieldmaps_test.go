package mixer

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestReceiveWithReusedMapsKeepsAbsentFieldsAbsent: an object made in a map
// handed back by an earlier, fuller object holds exactly what a new map
// would: a field the record lacks stays absent (it leaves targets
// untouched), a null stays null.
func TestReceiveWithReusedMapsKeepsAbsentFieldsAbsent(t *testing.T) {
	t.Parallel()
	recv, _, _, _ := seedMixers(t)
	full := &Record{Location: "public.products", Op: OpUpsert, Complete: true, Fields: map[string]any{
		"id": json.Number("7"), "stripe_id": "prod_A", "product_name": "Gold", "price": json.Number("1000")}}
	partial := &Record{Location: "public.products", Op: OpUpsert, Fields: map[string]any{
		"id": json.Number("8"), "price": nil}}
	var maps FieldMaps
	for round := range 3 { // the second and third rounds fill maps handed back
		for _, rec := range []*Record{full, partial} {
			want := recv.Receive(rec, nil)
			got := recv.ReceiveWith(rec, nil, &maps)
			if len(got) != 1 || len(want) != 1 || got[0].Err != nil || want[0].Err != nil {
				t.Fatalf("round %d: results %+v, want %+v", round, got, want)
			}
			if !reflect.DeepEqual(got[0].Object, want[0].Object) {
				t.Fatalf("round %d, %v: object from a reused map %+v, from a new one %+v", round, rec.Fields, got[0].Object, want[0].Object)
			}
			maps.Put(got[0].Object.Fields)
		}
	}
	if len(maps.free) != 1 {
		t.Fatalf("one object at a time should keep one spare map, kept %d", len(maps.free))
	}
}

// TestDecodeEnvelopeWithReusedMaps: an envelope decoded into a map handed
// back by a fuller one holds its own fields only.
func TestDecodeEnvelopeWithReusedMaps(t *testing.T) {
	t.Parallel()
	at := time.UnixMicro(1765000000123456).UTC()
	envs := []*Envelope{
		{Object: Object{Model: "item", Op: OpUpsert, Fields: map[string]any{"id": json.Number("1"), "name": "a", "qty": json.Number("2"), "note": nil, "doc": JSONText(`{"k":1}`)}},
			Source: "src", Location: "public.items", Position: "0/1", CommitTime: at},
		{Object: Object{Model: "item", Op: OpUpsert, Fields: map[string]any{"id": json.Number("2"), "note": nil}},
			Source: "src", Location: "public.items", Position: "0/2", CommitTime: at},
		{Object: Object{Model: "item", Op: OpDelete, Fields: map[string]any{"id": json.Number("3")}},
			Source: "src", Location: "public.items", Position: "0/3", CommitTime: at},
		{Object: Object{Model: "item", Op: OpUpsert, Fields: map[string]any{}}, Source: "src", Location: "public.items"},
	}
	var maps FieldMaps
	for round := range 2 {
		for _, e := range envs {
			b, err := AppendEnvelope(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			want, err := DecodeEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeEnvelopeWith(b, &maps)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) || len(got.Fields) != len(e.Fields) {
				t.Fatalf("round %d: decoded into a reused map %+v, into a new one %+v", round, got, want)
			}
			maps.Put(got.Fields)
			text, err := DecodeEnvelopeText(string(b), &maps) // the strings cut from the text itself
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(text, want) {
				t.Fatalf("round %d: decoded from text %+v, from bytes %+v", round, text, want)
			}
			maps.Put(text.Fields)
		}
	}
}

// TestFieldMapsKeepsFew: a stage that hands back more maps than it takes
// (a batch's worth) keeps a few, not all.
func TestFieldMapsKeepsFew(t *testing.T) {
	t.Parallel()
	var maps FieldMaps
	for range 100 {
		maps.Put(map[string]any{"a": 1})
	}
	if len(maps.free) != maxFreeMaps {
		t.Fatalf("kept %d maps, want %d", len(maps.free), maxFreeMaps)
	}
	for _, m := range maps.free {
		if len(m) != 0 {
			t.Fatalf("a kept map holds %v", m)
		}
	}
	var none *FieldMaps
	none.Put(map[string]any{"a": 1}) // a nil FieldMaps takes nothing and does not fail
	if m := none.get(3); m == nil || len(m) != 0 {
		t.Fatalf("a nil FieldMaps gave %v", m)
	}
}

// TestPushWithReusedMapsKeepsAbsentFieldsAbsent: a target record made in a
// map handed back by an earlier batch's fuller record holds exactly what a
// new map would; a delete's record holds its key alone.
func TestPushWithReusedMapsKeepsAbsentFieldsAbsent(t *testing.T) {
	t.Parallel()
	_, push, _, _ := seedMixers(t)
	full := &Object{Model: "product", Op: OpUpsert, Fields: map[string]any{
		"id": json.Number("7"), "stripe_id": "prod_A", "product_name": "Gold", "price": json.Number("1000")}}
	partial := &Object{Model: "product", Op: OpUpsert, Fields: map[string]any{"id": json.Number("8"), "price": nil}}
	del := &Object{Model: "product", Op: OpDelete, Fields: map[string]any{"id": json.Number("9")}}
	maps := &FieldMaps{Keep: 100}
	for round := range 3 { // later rounds fill the maps of the round before
		var batch []PushResult
		for _, obj := range []*Object{full, partial, del, full} {
			want := push.Push(obj, nil)
			got := push.PushWith(obj, nil, maps)
			if len(got) == 0 || len(got) != len(want) {
				t.Fatalf("round %d: %d records, want %d", round, len(got), len(want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("round %d, %v: record from a reused map %+v, from a new one %+v", round, obj.Fields, got[i], want[i])
				}
			}
			batch = append(batch, got...)
		}
		for _, r := range batch { // the batch's write returned
			maps.Put(r.Record.Fields)
		}
		if len(maps.free) != len(batch) {
			t.Fatalf("round %d: kept %d maps of a batch of %d records", round, len(maps.free), len(batch))
		}
	}
}
