package coord

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/redis/go-redis/v9"
)

// A stream entry carries one or more objects of one partition, in order:
//
//	n  the number of objects, in decimal
//	b  the objects, each as uvarint(len(key)) key uvarint(len(payload)) payload
//	z  instead of b: the same body compressed with S2 (block format)
//
// Packing the objects a publish sends to one partition into one entry makes
// Redis's work (append, consumer-group bookkeeping, acknowledgement, trim)
// scale with batches rather than rows. The encoding is pinned by a golden
// file.
//
// What Redis spends on an entry beyond that grows with its bytes: it parses
// them, appends them to the AOF, keeps them in memory and copies them to
// every reader. A body of many objects (a snapshot, a catch-up) is mostly
// the same field names, model, source and position over and over, and S2
// (klauspost/compress, a faster Snappy) shrinks it to about a fifth for
// a fraction of a microsecond an object, less than Redis saves; a small
// body (a trickle's single row) gains little and stays plain.

// Entry compression settings (Config.EntryCompression).
const (
	CompressionS2   = "s2"
	CompressionNone = "none"
)

// compressMin is the smallest body worth compressing: below it the saving
// is a few dozen bytes and costs a call for nothing.
const compressMin = 1 << 10

// maxDecodedBody is the largest body compressed, and so what a compressed
// body may claim to expand to: anything more is damage, refused before it
// is allocated. A packed body is at most maxEntryBody plus one object, and
// nothing bounds an object (a row with a text column of megabytes): a body
// larger than this is written plain, as before compression.
const maxDecodedBody = 2*maxEntryBody + 1<<16

// compressBody returns the entry field and value that carry body: z and its
// S2 block when that saves at least an eighth, else b and body itself.
// The S2 block goes into dst when it has room for
// s2.MaxEncodedLen(len(body)) (nil: a new slice).
func compressBody(body, dst []byte) (field string, value []byte) {
	if len(body) < compressMin || len(body) > maxDecodedBody {
		return "b", body
	}
	z := s2.Encode(dst, body)
	if len(z) > len(body)-len(body)/8 {
		return "b", body
	}
	return "z", z
}

// entryBody returns the packed body of an entry, decompressed when it came
// compressed; raw is what the entry held, for a dead letter when it cannot
// be read.
func entryBody(m redis.XMessage) (body, raw string, err error) {
	if b, ok := m.Values["b"].(string); ok {
		return b, b, nil
	}
	z, ok := m.Values["z"].(string)
	if !ok {
		return "", "", errBadEntry
	}
	zb := unsafe.Slice(unsafe.StringData(z), len(z))
	n, err := s2.DecodedLen(zb)
	if err != nil || n > maxDecodedBody {
		return "", z, fmt.Errorf("%w: compressed body of %d bytes does not decode (%d bytes claimed)", errBadEntry, len(z), n)
	}
	out, err := s2.Decode(make([]byte, n), zb)
	if err != nil {
		return "", z, fmt.Errorf("%w: %v", errBadEntry, err)
	}
	return unsafe.String(unsafe.SliceData(out), len(out)), z, nil
}

// inflate replaces a compressed body in m by the body it holds, so what
// reads m after (the read's sizing, appendDeliveries) finds it plain; a
// body that does not decode is left as it is, for appendDeliveries to
// dead-letter (it counts as no body in the sizing).
func inflate(m redis.XMessage) {
	if _, ok := m.Values["z"]; !ok {
		return
	}
	if body, _, err := entryBody(m); err == nil {
		m.Values["b"] = body
		delete(m.Values, "z")
	}
}

// appendPacked adds one object to a packed body.
func appendPacked(dst []byte, key string, payload []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// packedObject is one object read back from an entry.
type packedObject struct {
	key     string
	payload []byte
}

var errBadEntry = errors.New("malformed stream entry")

// unpack reads the objects of an entry body without copying it: each key
// is a substring of body, each payload a read-only view of body's bytes
// (capacity cut to its length, so an append copies). The body is the reply
// string the Redis client allocated for this entry alone (or the buffer it
// was decompressed into, also this entry's alone), and nothing
// writes to a Delivery's payload: copying it, as converting the body to
// []byte did, doubled the memory and the allocation of every read.
func unpack(body string) ([]packedObject, error) { return unpackN(body, 0) }

// unpackN is unpack with room made for n objects (the entry's count), so
// the slice does not grow by doubling.
func unpackN(body string, n int) ([]packedObject, error) {
	out := make([]packedObject, 0, max(n, 0))
	b := unsafe.Slice(unsafe.StringData(body), len(body))
	at := 0
	for at < len(b) {
		kl, n := binary.Uvarint(b[at:])
		if n <= 0 || uint64(len(b)-at-n) < kl {
			return nil, errBadEntry
		}
		at += n
		key := body[at : at+int(kl)]
		at += int(kl)
		pl, n := binary.Uvarint(b[at:])
		if n <= 0 || uint64(len(b)-at-n) < pl {
			return nil, errBadEntry
		}
		at += n
		end := at + int(pl)
		out = append(out, packedObject{key: key, payload: b[at:end:end]})
		at = end
	}
	return out, nil
}

// A replay marker is an entry with fields c=replay, t (target), m (model)
// and k (key): when the partition's owner in the target's group reaches it,
// it replays the key's dead letters there, in the partition's order.

// replayMarker is a replay request read from a partition.
type replayMarker struct {
	target, model, key string
}

// appendDeliveries appends the objects of a stream entry to dst, one
// delivery each. An entry that cannot be read becomes a single delivery
// holding its raw body, which the handler will refuse and the consumer
// dead-letter.
func appendDeliveries(dst []Delivery, p *partition, m redis.XMessage, deliveries int) []Delivery {
	if str(m.Values["c"]) == "replay" {
		r := &replayMarker{target: str(m.Values["t"]), model: str(m.Values["m"]), key: str(m.Values["k"])}
		return append(dst, Delivery{Model: p.model, Partition: p.index, ID: m.ID, Count: 1, Key: r.key, Deliveries: deliveries, stream: p.stream, gen: p.gen, Fence: p.token, replay: r})
	}
	body, raw, err := entryBody(m)
	n, _ := strconv.Atoi(str(m.Values["n"]))
	var objs []packedObject
	if err == nil {
		objs, err = unpackN(body, min(n, len(body)/2)) // an object takes two bytes at least: a bad count allocates no more than the body
	}
	if err != nil || n != len(objs) || n == 0 {
		return append(dst, Delivery{Model: p.model, Partition: p.index, ID: m.ID, Payload: []byte(raw), Deliveries: deliveries, Count: 1, stream: p.stream, gen: p.gen, Fence: p.token})
	}
	dst = slices.Grow(dst, len(objs))
	for i, o := range objs {
		dst = append(dst, Delivery{Model: p.model, Partition: p.index, ID: m.ID, Index: i, Count: len(objs), Key: o.key,
			Payload: o.payload, Deliveries: deliveries, stream: p.stream, gen: p.gen, Fence: p.token})
	}
	return dst
}

func str(v any) string { s, _ := v.(string); return s }

// EntryObject is an object read from a stream entry, for tools and tests.
type EntryObject struct {
	Key     string
	Payload []byte
}

// EntryObjects reads the objects of a raw stream entry.
func EntryObjects(m redis.XMessage) ([]EntryObject, error) {
	body, _, err := entryBody(m)
	if err != nil {
		return nil, err
	}
	objs, err := unpack(body)
	if err != nil {
		return nil, err
	}
	out := make([]EntryObject, len(objs))
	for i, o := range objs {
		out[i] = EntryObject{Key: o.key, Payload: o.payload}
	}
	return out, nil
}
