// Package stripe connects Remix to Stripe: a system's keys (Spec), the form
// encoding the API takes (FormValues), the webhook receiver that every
// ingest replica runs (NewReceiver: signatures checked on the raw bytes,
// events published under their own ids and ordered per object by their
// versions), the Events API reader that runs under the system's reader lock
// (NewSource: catch-up every poll_interval, and a backfill that lists every
// mapped object type when there is no cursor or it is older than Stripe
// keeps events), and the API sink (NewSink: creates and updates with
// idempotency keys made from each record's version, archives where Stripe
// deletes nothing, replaces prices whose amount changed).
//
// Two-way sync: every call the sink makes carries an idempotency key that
// names the system the change was first made in (remix:<system>:...); the
// events that call causes carry the key back, and the receiver and the
// source mark those changes with that system as their origin, so the
// pusher does not write them back there. The event of an object the call
// created is the exception: it brings the id Stripe assigned, which the
// origin does not have yet.
package stripe
