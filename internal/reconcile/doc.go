// Package reconcile removes from the targets what no longer exists at a
// source: `remix reconcile SOURCE`. It is the second half of recovering a
// source whose replication slot was lost. `remix reset` makes the next
// ingest copy the tables again, and the copy brings back every row that
// exists; but a row deleted while the slot was gone sends no delete, and
// stays in the targets.
//
// For each model the source fills, reconcile reads the keys the source holds
// now (through its receive mixer, as model field values) and the keys each
// target location holds (through the target's push mixer), and deletes the
// target rows whose key no source of the model holds. It compares on the
// location's search keys that every source of the model fills.
//
// What can be attributed:
//   - A model that other sources fill too (fan-in): the keys of every
//     source of the model are read, and a target row is deleted only when
//     none of them holds its key. A row that belongs to another source is
//     never deleted, and the other sources' reader locks are held as well,
//     so none of them publishes meanwhile.
//   - The deletes are objects of the model, published on its partition
//     streams like the ingest's, so every target of the model applies them;
//     with the rule above that is right for all of them.
//   - A model the source fills from several of its locations is left out: a
//     missing row cannot be told to one of them. So is a target location
//     where none of the search keys is filled by every source of the model,
//     or that does not store the model fields the source's row identity
//     maps to (the delete's partition key is rebuilt from them).
//
// Order and fencing: with --apply, reconcile takes the reader lock of every
// source concerned (it refuses when an ingest holds one: stop the ingests
// first), waits until every target has applied what the streams hold, so
// the comparison sees everything published so far, then publishes the
// deletes through the fenced publish path the ingest uses, each in the
// partition of the source row's own changes (rebuilt by the connector, and
// checked against every row the source lists), and waits again until the
// targets applied them before it lets the locks go. A change made at the
// source meanwhile waits in the slot and is published after the deletes.
// Without --apply nothing is locked or written: a dry run prints what would
// be deleted, with counts per target location and a sample of keys.
package reconcile
