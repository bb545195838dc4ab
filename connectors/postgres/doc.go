// Package postgres is the PostgreSQL connector.
//
// The Source reads a database through logical replication (pgoutput,
// protocol 2 with streaming of large transactions): it creates the
// publication and a permanent slot if missing, copies the mapped tables
// through the slot's exported snapshot (resumable by key), then streams
// inserts, updates, deletes and truncates. It confirms a flush position only
// when the ingest says the transaction is durable downstream, answers
// keepalives, and advances an idle slot from the server's keepalives.
//
// The Sink writes batches of target records in one pipelined round trip and
// one transaction: rows collapsed per search key, then one INSERT ... SELECT
// FROM unnest(...) ON CONFLICT statement per column set, and DELETE ... =
// ANY(...) for deletes. Only mapped columns are written. Values are cast to
// the column's type without its length, so the column's own assignment
// refuses what does not fit rather than a cast cutting it (casts.go); json
// and jsonb values are written as their text.
//
// Only this package imports pgx and pglogrepl.
package postgres
