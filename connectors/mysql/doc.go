// Package mysql is the MySQL and MariaDB connector (type mysql).
//
// The Source reads the binary log as a replica does (row-based
// replication through go-mysql), with positions that are GTID sets in the
// server's flavour: MariaDB's domain-server-sequence list, MySQL's
// server_uuid:intervals. A position is saved in the source's checkpoint
// only when the ingest confirms it, so a standby ingest resumes exactly
// where the changes became durable downstream; a saved position whose
// binary logs the server purged is connectors.ErrPositionLost, and
// `remix reset` starts over. Before reading, Open checks the server
// (log_bin, binlog_format=ROW, binlog_row_image=FULL,
// binlog_row_metadata=FULL, GTIDs, privileges, a server_id no other
// replica uses) and the mapped tables. The initial snapshot takes no lock:
// it reads each table in primary-key chunks between a low and a high
// watermark written to a small table in the source, and drops the chunk
// rows the log changed inside that window (snapshot.go, DBLog). Values
// decode exactly, the same from the log and from the snapshot (decode.go).
// A mapped column renamed or dropped while streaming dead-letters the
// table's upserts with the reason (shape.go).
//
// The Sink writes each batch in one transaction: INSERT ... ON DUPLICATE
// KEY UPDATE per table and set of columns, DELETE ... IN per search key,
// under a strict sql_mode so the server refuses what does not fit, with
// the batch's fencing tokens in a fence table.
//
// Two-way sync (a table both read and written by Remix) is not supported:
// the source cannot tell Remix's own writes from others.
//
// Only this package imports go-mysql and the MySQL driver (and testenv,
// for the tests' servers).
package mysql
