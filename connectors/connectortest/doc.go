// Package connectortest holds the behaviours every connector must have, run
// by each connector's own tests against a real system: RunSink for sinks,
// RunSource for sources. A harness makes a fresh location of the system and
// gives the suite what it needs to change it or read it back; features say
// which behaviours fit the kind of system.
//
// Sinks are of three kinds, which a sink may combine (SinkFeatures):
//   - keyed stores (tables, an API's objects): upserting twice changes
//     nothing, deleting a missing row is fine, absent fields stay
//     untouched, nulls set null, a row's changes in one batch apply in
//     order, a bad value is permanent, exact numbers survive;
//   - append-only logs (files, brokers): records read back in order per
//     partition, deletes as delete records, a write repeated after a retry
//     visible as repeats with the same Origin;
//   - per-call systems (APIs): the cost of a write is its calls, a refused
//     record is named by a *connectors.RecordError, an outage is
//     connectors.ErrUnavailable.
//
// Every sink takes concurrent writes of disjoint partitions and respects a
// cancelled context; a connectors.Buffered sink shows nothing before Flush
// and drops what it holds on Discard.
//
// Every source delivers the changes of one key in order, resumes after the
// last position it confirmed (at least once), fails with
// connectors.ErrPositionLost when that position is gone, hands over a
// change it cannot decode as a Change with Err set, and respects its
// context.
package connectortest
