package coord

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestEntryEncodingIsStable(t *testing.T) {
	t.Parallel()
	body := appendPacked(nil, "prod-db/public.products/42", []byte(`{"v":1,"m":"product"}`))
	body = appendPacked(body, "", nil)
	body = appendPacked(body, "k\nwith\x00bytes", []byte("é"))
	golden := filepath.Join("testdata", "entry_v1.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		_ = os.WriteFile(golden, body, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != string(want) {
		t.Fatalf("entry encoding changed:\n got %q\nwant %q", body, want)
	}
	objs, err := unpack(string(want))
	if err != nil {
		t.Fatal(err)
	}
	wantObjs := []packedObject{{"prod-db/public.products/42", []byte(`{"v":1,"m":"product"}`)}, {"", []byte{}}, {"k\nwith\x00bytes", []byte("é")}}
	if !reflect.DeepEqual(objs, wantObjs) {
		t.Fatalf("unpack = %q", objs)
	}
	ds := appendDeliveries(nil, &partition{model: "product", index: 3, stream: "s"}, redis.XMessage{ID: "1-0", Values: map[string]any{"n": "3", "b": string(want)}}, 2)
	if len(ds) != 3 || ds[2].Index != 2 || ds[2].Count != 3 || ds[0].Key != "prod-db/public.products/42" || ds[1].Deliveries != 2 {
		t.Fatalf("deliveries %+v", ds)
	}
	// A damaged entry becomes one delivery the handler will refuse.
	bad := appendDeliveries(nil, &partition{}, redis.XMessage{ID: "2-0", Values: map[string]any{"n": "2", "b": "\xff"}}, 1)
	if len(bad) != 1 || bad[0].Count != 1 {
		t.Fatalf("damaged entry: %+v", bad)
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(appendPacked(appendPacked(nil, "a", []byte("b")), "c", nil))
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		objs, err := unpack(string(b))
		if err != nil {
			return
		}
		var again []byte
		for _, o := range objs {
			again = appendPacked(again, o.key, o.payload)
		}
		if string(again) != string(b) {
			// Non-minimal varints decode but re-encode shorter; that is fine
			// as long as the objects agree.
			back, err := unpack(string(again))
			if err != nil || !reflect.DeepEqual(back, objs) {
				t.Fatalf("round trip of %q differs", b)
			}
		}
	})
}
