// Package coord is everything Remix keeps in Redis: the partitioned streams
// that carry model objects from ingests to pushers, the consumer groups and
// partition leases that give each partition of each target one pusher at a
// time, dead-letter queues with parked keys, the shared rate limits, the
// fenced reader lock of each source, checkpoints, and the durability check.
//
// Ingest and pusher processes never talk to each other; they share only what
// this package writes. All keys come from keys.go; all Lua scripts are in
// scripts.go with their KEYS, ARGV and return values documented.
//
// Remix needs a standalone Redis (optionally behind Sentinel) with AOF on:
// its publish and dead-letter scripts touch several streams at once, which a
// Redis Cluster would reject. Keys still carry hash tags grouping a stream
// with its per-partition state.
package coord
