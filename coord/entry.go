package coord

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// A stream entry carries one or more objects of one partition, in order:
//
//	n  the number of objects, in decimal
//	b  the objects, each as uvarint(len(key)) key uvarint(len(payload)) payload
//
// Packing the objects a publish sends to one partition into one entry makes
// Redis's work (append, consumer-group bookkeeping, acknowledgement, trim)
// scale with batches rather than rows. The encoding is pinned by a golden
// file.

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

// unpack reads the objects of an entry body.
func unpack(b []byte) ([]packedObject, error) {
	var out []packedObject
	for len(b) > 0 {
		kl, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < kl {
			return nil, errBadEntry
		}
		b = b[n:]
		key := string(b[:kl])
		b = b[kl:]
		pl, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < pl {
			return nil, errBadEntry
		}
		b = b[n:]
		out = append(out, packedObject{key: key, payload: b[:pl:pl]})
		b = b[pl:]
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

// entryDeliveries unpacks a stream entry into one delivery per object. An
// entry that cannot be read becomes a single delivery holding its raw body,
// which the handler will refuse and the consumer dead-letter.
func entryDeliveries(p *partition, m redis.XMessage, deliveries int) []Delivery {
	if str(m.Values["c"]) == "replay" {
		r := &replayMarker{target: str(m.Values["t"]), model: str(m.Values["m"]), key: str(m.Values["k"])}
		return []Delivery{{Model: p.model, Partition: p.index, ID: m.ID, Count: 1, Key: r.key, Deliveries: deliveries, stream: p.stream, gen: p.gen, Fence: p.token, replay: r}}
	}
	body, _ := m.Values["b"].(string)
	objs, err := unpack([]byte(body))
	if n, _ := strconv.Atoi(str(m.Values["n"])); err != nil || n != len(objs) || n == 0 {
		return []Delivery{{Model: p.model, Partition: p.index, ID: m.ID, Payload: []byte(body), Deliveries: deliveries, Count: 1, stream: p.stream, gen: p.gen, Fence: p.token}}
	}
	out := make([]Delivery, len(objs))
	for i, o := range objs {
		out[i] = Delivery{Model: p.model, Partition: p.index, ID: m.ID, Index: i, Count: len(objs), Key: o.key,
			Payload: o.payload, Deliveries: deliveries, stream: p.stream, gen: p.gen, Fence: p.token}
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

// EntryObject is an object read from a stream entry, for tools and tests.
type EntryObject struct {
	Key     string
	Payload []byte
}

// EntryObjects reads the objects of a raw stream entry.
func EntryObjects(m redis.XMessage) ([]EntryObject, error) {
	objs, err := unpack([]byte(str(m.Values["b"])))
	if err != nil {
		return nil, err
	}
	out := make([]EntryObject, len(objs))
	for i, o := range objs {
		out[i] = EntryObject{Key: o.key, Payload: o.payload}
	}
	return out, nil
}
