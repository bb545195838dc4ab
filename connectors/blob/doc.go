// Package blob writes models to object storage as datasets: Parquet
// (zstd) or gzip JSON Lines files that Spark, Databricks, DuckDB, Polars
// and pandas read directly. One sink serves four stores through
// gocloud.dev/blob; each has a connector type and a few lines of its own
// (stores.go) that open its bucket: s3 (and S3-compatible stores such as
// VAST, MinIO, versitygw), gcs, azure_blob and file (a local folder). They
// are one package because everything after the bucket (columns, files,
// names, flushing) is the same; a package per store would repeat it or
// need a fifth to share it.
//
// A push location is a dataset name: PREFIX/LOCATION/ holds its files,
// laid out Hive-style as date=YYYY-MM-DD/part-MODEL.PARTITION.FIRST.LAST.parquet.
// Every row is one change: the push mixer's columns, typed from the
// model's JSON Schema (every one nullable: a delete row carries only its
// key), then the metadata columns _remix_op, _remix_key, _remix_version,
// _remix_committed_at, _remix_created, _remix_absent, _remix_source,
// _remix_position and _remix_system.
//
// Order and repeats: _remix_version orders a key's changes (version.go).
// The sink is a connectors.Buffered: records go to spool files on local
// disk as they are written and are uploaded when their partition is
// flushed, each file complete under its final name, so the pusher
// acknowledges their stream entries only once they are in the store. A
// file holds the entries of one partition and one window of max_file_age
// (by the time the stream stamped them), at most max_file_bytes; its name
// comes from its first and last entries, so a pusher that dies after an
// upload and before the acknowledgement has the next owner write the same
// object again. Where a takeover cuts at another point, two files share
// rows; their versions are equal and the latest-state query keeps one.
//
// Fences are not kept: a stale pusher can only add files of entries that
// are already written, which the query reads as repeats. A truncate starts
// a new epoch (a marker row, then PREFIX/LOCATION/_remix/epoch); rows
// written after it carry it in their versions.
//
// Errors: a value a column cannot hold is the record's fault
// (ErrPermanent, dead-lettered); the store unreachable or refusing a
// write is ErrUnavailable; a spool file that cannot be written stalls the
// partition until the pusher lets it go.
package blob
