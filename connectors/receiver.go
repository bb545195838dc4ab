package connectors

import (
	"context"
	"log/slog"
	"net/http"
)

// Receiver accepts changes a system pushes to Remix over HTTP (webhooks).
//
// Every ingest replica serves POST /webhooks/{system} for each system whose
// connector has a receiver, whether or not it holds the system's reader
// lock: a load balancer may send a delivery to any replica. Deliveries are
// independent events, deduplicated by their id and ordered per object by
// their changes' Version, so accepting them needs no single reader; only a
// source's own catch-up (its Source, under the reader lock) does.
//
// The ingest caps the body (1 MiB: 413 beyond) and hands the request to
// ServeHTTP. The receiver checks the delivery (its signature, on the raw
// bytes, before parsing anything), calls ReceiverDeps.Publish, and answers
// 2xx only once Publish returned nil (the objects are durable in Redis),
// 4xx for a delivery it refuses (nothing published), 5xx when publishing
// failed, so the sender retries.
type Receiver interface {
	http.Handler
	// Close releases what the receiver holds (a listener process, say).
	Close(ctx context.Context) error
}

// ReceiverDeps are what a receiver gets from the ingest.
type ReceiverDeps struct {
	// Publish maps a delivery's changes through the system's receive mixer
	// and makes the resulting objects durable in Redis, in one atomic step.
	// nil means durable, or that a delivery with this id was published
	// before (deliveries are deduplicated by id for 31 days). Changes with
	// a Version older than, or equal to, one published for their object are
	// skipped (Skipped counts them).
	Publish func(ctx context.Context, id string, changes []Change) (DeliveryResult, error)
	Logger  *slog.Logger
}

// DeliveryResult says what publishing a delivery did.
type DeliveryResult struct {
	Repeat    bool // the delivery id was published before: nothing was now
	Published int  // objects published
	Stale     int  // changes skipped: an older version of their object was newer
	Tied      int  // changes skipped: the same version of their object was published
	Bad       int  // changes set aside as dead letters (they did not fit their model)
}
