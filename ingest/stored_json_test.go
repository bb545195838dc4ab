package ingest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sqlpipe/remix/mixer"
)

// A bad record kept for replay comes back with the values it had: JSON
// values byte for byte and still JSON values, a JSON null apart from SQL
// NULL.
func TestStoredRecordKeepsJSONValues(t *testing.T) {
	t.Parallel()
	r := mixer.Record{Location: "public.docs", Op: mixer.OpUpsert, Complete: true, Fields: map[string]any{
		"id": json.Number("9007199254740993"), "name": "<x>", "gone": nil,
		"doc": mixer.JSONText(` {"b": 1, "a": 2, "b": "<"} `), "jnull": mixer.JSONText(`null`),
	}}
	back, _, err := decodeRecord(encodeRecord(&r, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("stored record came back as\n%#v\nwant\n%#v", back, r)
	}
	if _, still := r.Fields["doc"]; !still {
		t.Fatal("encoding changed the record it encoded")
	}
	old, _, err := decodeRecord([]byte(`{"location": "public.docs", "op": "delete", "fields": {"id": 3}}`))
	if err != nil || !reflect.DeepEqual(old.Fields, map[string]any{"id": json.Number("3")}) {
		t.Fatalf("a record stored before JSON values: %#v, %v", old, err)
	}
}
