// Package mixer maps records between systems and canonical models, with no
// I/O: paths into nested records (metadata.id, metadata[id]), exact values
// (numbers as decimal text, absent distinct from null, JSON values carried
// whole as JSONText), conversion to and
// from JSON Schema types, validation against compiled models, receive rules
// (system record → objects) and push rules (object → target record and its
// search key), and the envelope that carries an object through Redis.
package mixer
