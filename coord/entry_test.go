package coord

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/klauspost/compress/s2"
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

// bigBody is a packed body of many objects alike, as a snapshot's entries
// are.
func bigBody() []byte {
	var body []byte
	for i := 0; i < 60; i++ {
		body = appendPacked(body, "prod-db/public.products/"+strconv.Itoa(i), []byte(`{"v":1,"m":"product","op":"u","f":{"id":`+strconv.Itoa(i)+`,"name":"Gold"},"s":"prod-db","l":"public.products","p":"0/16B3748"}`))
	}
	return body
}

func TestCompressedEntryReadsAsPlain(t *testing.T) {
	t.Parallel()
	body := bigBody()
	field, z := compressBody(body, nil)
	if field != "z" || len(z)*3 > len(body) {
		t.Fatalf("compressBody: field %s, %d bytes of %d", field, len(z), len(body))
	}
	p := &partition{model: "product", index: 1, stream: "s"}
	plain := appendDeliveries(nil, p, redis.XMessage{ID: "1-0", Values: map[string]any{"n": "60", "b": string(body)}}, 1)
	packed := appendDeliveries(nil, p, redis.XMessage{ID: "1-0", Values: map[string]any{"n": "60", "z": string(z)}}, 1)
	if len(plain) != 60 || !reflect.DeepEqual(plain, packed) {
		t.Fatalf("compressed entry read as %d deliveries, plain as %d, or they differ", len(packed), len(plain))
	}
	m := redis.XMessage{Values: map[string]any{"n": "60", "z": string(z)}}
	if inflate(m); len(str(m.Values["b"])) != len(body) {
		t.Fatalf("inflated body of %d bytes, want the decompressed %d", len(str(m.Values["b"])), len(body))
	}
	// Small and incompressible bodies stay plain.
	if f, v := compressBody(body[:500], nil); f != "b" || len(v) != 500 {
		t.Fatalf("a 500-byte body: field %s", f)
	}
	noise := make([]byte, 4096)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(noise)
	if f, _ := compressBody(noise, nil); f != "b" {
		t.Fatal("a body that does not shrink was compressed")
	}
}

// TestCompressedEntryEncodingReads pins the reading of a stored compressed
// body: what an ingest wrote stays readable, whatever the S2 version that
// writes today.
func TestCompressedEntryEncodingReads(t *testing.T) {
	t.Parallel()
	golden := filepath.Join("testdata", "entry_v1_s2.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		_, z := compressBody(bigBody(), nil)
		_ = os.WriteFile(golden, z, 0o644)
	}
	z, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	body, raw, err := entryBody(redis.XMessage{Values: map[string]any{"z": string(z)}})
	if err != nil || body != string(bigBody()) || raw != string(z) {
		t.Fatalf("stored compressed body read as %d bytes (%v), want %d", len(body), err, len(bigBody()))
	}
}

func TestDamagedCompressedEntry(t *testing.T) {
	t.Parallel()
	_, z := compressBody(bigBody(), nil)
	huge := binary.AppendUvarint(nil, maxDecodedBody+1)
	for name, v := range map[string]string{
		"cut short":   string(z[:len(z)/2]),
		"not s2":      "\x05hello",
		"too large":   string(huge) + "\x00",
		"empty":       "",
		"bit flipped": string(append([]byte{z[0]}, append([]byte{z[1] ^ 0xff}, z[2:]...)...)),
	} {
		ds := appendDeliveries(nil, &partition{}, redis.XMessage{ID: "3-0", Values: map[string]any{"n": "60", "z": v}}, 1)
		if len(ds) != 1 || ds[0].Count != 1 || string(ds[0].Payload) != v {
			t.Errorf("%s: %d deliveries, want one holding the compressed bytes as they were", name, len(ds))
		}
	}
	if _, _, err := entryBody(redis.XMessage{Values: map[string]any{"n": "1"}}); !errors.Is(err, errBadEntry) {
		t.Fatalf("an entry without a body: %v", err)
	}
}

// TestLargestCompressedBody: a body up to the bound is compressed and reads
// back; a larger one (an entry holding a row of megabytes) is written plain,
// since a compressed body claiming more than the bound is refused.
func TestLargestCompressedBody(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("a row of megabytes "), maxDecodedBody/19+1)
	if f, _ := compressBody(body[:maxDecodedBody+1], nil); f != "b" {
		t.Fatalf("a body of %d bytes, over the bound, was compressed", maxDecodedBody+1)
	}
	f, z := compressBody(body[:maxDecodedBody], nil)
	if f != "z" {
		t.Fatal("a body at the bound was not compressed")
	}
	got, _, err := entryBody(redis.XMessage{Values: map[string]any{"z": string(z)}})
	if err != nil || got != string(body[:maxDecodedBody]) {
		t.Fatalf("a body at the bound read back as %d bytes: %v", len(got), err)
	}
	over := s2.Encode(nil, body[:maxDecodedBody+1]) // valid S2, one byte too large
	if _, _, err := entryBody(redis.XMessage{Values: map[string]any{"z": string(over)}}); !errors.Is(err, errBadEntry) {
		t.Fatalf("a body claiming more than the bound: %v", err)
	}
}

func FuzzEntryBody(f *testing.F) {
	_, z := compressBody(bigBody(), nil)
	f.Add(z)
	f.Add([]byte("\x05hello"))
	f.Fuzz(func(t *testing.T, z []byte) {
		body, _, err := entryBody(redis.XMessage{Values: map[string]any{"z": string(z)}})
		if err != nil {
			return
		}
		if len(body) > maxDecodedBody {
			t.Fatalf("decoded %d bytes, more than the bound", len(body))
		}
		m := redis.XMessage{Values: map[string]any{"z": string(z)}}
		if inflate(m); str(m.Values["b"]) != body {
			t.Fatalf("inflated body of %d bytes, decoded %d", len(str(m.Values["b"])), len(body))
		}
	})
}

func TestInflate(t *testing.T) {
	t.Parallel()
	_, z := compressBody(bigBody(), nil)
	m := redis.XMessage{Values: map[string]any{"n": "60", "z": string(z)}}
	inflate(m)
	if m.Values["b"] != string(bigBody()) || m.Values["z"] != nil {
		t.Fatalf("inflated entry holds %d fields, b of %d bytes", len(m.Values), len(str(m.Values["b"])))
	}
	bad := redis.XMessage{Values: map[string]any{"n": "60", "z": "\x05hello"}}
	inflate(bad)
	if bad.Values["z"] != "\x05hello" || bad.Values["b"] != nil {
		t.Fatal("a damaged body was not left as it was")
	}
	plain := redis.XMessage{Values: map[string]any{"n": "1", "b": "x"}}
	inflate(plain)
	if plain.Values["b"] != "x" {
		t.Fatal("a plain entry changed")
	}
}
