package connectors

import "context"

// RetentionReporter is a source whose system keeps what the source has
// not confirmed yet, and can say how much, cheaply (one query): for
// PostgreSQL the WAL its replication slot holds on the server's disk. The
// leading ingest asks every few seconds, for `remix status` and a metric.
type RetentionReporter interface {
	// Retained is what the system keeps for this source, in bytes.
	Retained(ctx context.Context) (uint64, error)
}
