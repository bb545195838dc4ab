package stripe

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sqlpipe/remix/mixer"
)

// keyPrefix starts every idempotency key Remix sends, so that the events
// its own requests cause can be told apart from everyone else's.
const keyPrefix = "remix:"

// idempotencyKey names one call made for one version of one target record:
//
//	remix:<system>:<object type>:<hash>
//
// system is where the change was first made (the record's Origin.System),
// so the webhooks that follow can say on whose behalf Remix wrote; object
// type is the type of the resource the record is written to (product for
// products), so that an event can tell the object the call was made for
// from one it made on the side (a default price created with a product).
// The hash covers the location, the operation, the step of the write (a
// price replacement is several calls), the object's key, the change's
// version in its source (position, or stream entry when the source gave
// none, and commit time) and the exact parameters sent: the same record
// written again, after a crash between the call and its acknowledgement,
// sends the same key with the same parameters, and Stripe answers with the
// first answer instead of acting twice. At most 6+63+1+40+1+40 characters,
// well under Stripe's 255.
func idempotencyKey(rec *mixer.TargetRecord, step string, params url.Values) string {
	h := sha256.New()
	put := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	put(rec.Location)
	put(rec.Op.String())
	put(step)
	if rec.Key != nil {
		put(rec.Key.Target.String())
		v, _ := FormText(rec.Key.Value)
		put(v)
	} else {
		put("")
		put("")
	}
	o := &rec.Origin
	put(o.Source)
	if o.Position != "" {
		put(o.Position)
	} else {
		put(o.Model + "/" + strconv.Itoa(o.Partition) + "/" + o.Entry + "/" + strconv.Itoa(o.Index))
	}
	if !o.CommitTime.IsZero() {
		put(o.CommitTime.UTC().Format(time.RFC3339Nano))
	} else {
		put("")
	}
	put(params.Encode())
	system := o.System
	if system == "" {
		system = o.Source
	}
	if system == "" {
		system = "unknown"
	}
	return keyPrefix + system + ":" + objectTypeOf(rec.Location) + ":" + hex.EncodeToString(h.Sum(nil))[:40]
}

// parseKey reads the system and object type out of an idempotency key
// Remix sent; ok is false for anyone else's key.
func parseKey(key string) (system, objectType string, ok bool) {
	rest, found := strings.CutPrefix(key, keyPrefix)
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// objectTypeOf is the type of the objects an API resource holds: products
// hold product, checkout/sessions hold checkout.session.
func objectTypeOf(resource string) string {
	parts := strings.Split(resource, "/")
	last := parts[len(parts)-1]
	switch {
	case strings.HasSuffix(last, "ies"):
		last = strings.TrimSuffix(last, "ies") + "y"
	case strings.HasSuffix(last, "sses"), strings.HasSuffix(last, "xes"):
		last = strings.TrimSuffix(last, "es")
	case strings.HasSuffix(last, "s"):
		last = strings.TrimSuffix(last, "s")
	}
	parts[len(parts)-1] = last
	return strings.Join(parts, ".")
}

// resourceOf is the API resource that lists objects of a type: product is
// at products, checkout.session at checkout/sessions, subscription at
// subscriptions.
func resourceOf(objectType string) string {
	parts := strings.Split(objectType, ".")
	last := parts[len(parts)-1]
	switch {
	case strings.HasSuffix(last, "y") && !strings.HasSuffix(last, "ay") && !strings.HasSuffix(last, "ey") && !strings.HasSuffix(last, "oy"):
		last = strings.TrimSuffix(last, "y") + "ies"
	case strings.HasSuffix(last, "ss"), strings.HasSuffix(last, "x"):
		last += "es"
	default:
		last += "s"
	}
	parts[len(parts)-1] = last
	return strings.Join(parts, "/")
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
