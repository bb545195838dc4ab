package mixer

import "cmp"

// FieldMaps keeps the field maps of objects that are done with, for the
// next objects to fill instead of making new ones. A map is the largest
// allocation a row makes on each stage of its way (the source record, the
// object, the decoded envelope, the target record); a stage that is done
// with an object before it makes the next one (the ingest once the object
// is encoded, a pusher once it is mapped to target records) hands its map
// back here.
//
// The zero value is ready. A FieldMaps is not safe for concurrent use:
// keep one per goroutine, or per call.
type FieldMaps struct {
	free []map[string]any
	// Keep is how many maps it keeps at most; 0 keeps maxFreeMaps. A stage
	// that holds a whole batch of objects before handing their maps back
	// (a pusher's target records, until the sink's write returns) keeps a
	// batch's worth.
	Keep int
}

// maxFreeMaps is what a FieldMaps keeps unless told: a stage that holds one
// object at a time needs a few spare maps at most.
const maxFreeMaps = 8

// Put hands back m, which nothing may read or write afterwards: it is
// cleared and given to a later object. A nil FieldMaps or map does nothing.
func (f *FieldMaps) Put(m map[string]any) {
	if f == nil || m == nil || len(f.free) >= cmp.Or(f.Keep, maxFreeMaps) {
		return
	}
	clear(m)
	f.free = append(f.free, m)
}

// get returns an empty map: one handed back, or a new one with room for n.
func (f *FieldMaps) get(n int) map[string]any {
	if f != nil && len(f.free) > 0 {
		m := f.free[len(f.free)-1]
		f.free[len(f.free)-1] = nil
		f.free = f.free[:len(f.free)-1]
		return m
	}
	return make(map[string]any, n)
}
