package coord

import (
	"strconv"
	"strings"
)

// keys builds every Redis key of a namespace. Curly braces are hash tags:
// a partition's stream and its leases share {model:partition}; a queue's
// entries and parked keys share {dlq:system}.
type keys struct{ ns string }

// stream is the partition stream of a model: entries with fields k (the
// partition key) and d (the payload).
func (k keys) stream(model string, partition int) string {
	return k.ns + ":{" + model + ":" + strconv.Itoa(partition) + "}:stream"
}

// lease is the lease of one partition for one target's consumer group.
func (k keys) lease(model string, partition int, target string) string {
	return k.ns + ":{" + model + ":" + strconv.Itoa(partition) + "}:lease:" + target
}

// leaseFence numbers the tenures of a partition's lease for one target:
// the fencing token a sink keeps to refuse writes of an older tenure.
func (k keys) leaseFence(model string, partition int, target string) string {
	return k.ns + ":{" + model + ":" + strconv.Itoa(partition) + "}:fence:" + target
}

// tenures counts the lease tenures of a partition (for one target) that
// started in a row at the same cursor: how often its owner died while
// handling the entry after it.
func (k keys) tenures(model string, partition int, target string) string {
	return k.ns + ":{" + model + ":" + strconv.Itoa(partition) + "}:tenures:" + target
}

// rebalance is the channel on which a target's consumers announce that
// the partitions should be shared again.
func (k keys) rebalance(target string) string { return k.ns + ":{grp:" + target + "}:rebalance" }

// members is the sorted set of a target's live pushers, scored by expiry.
func (k keys) members(target string) string { return k.ns + ":{grp:" + target + "}:members" }

// dlqBase prefixes every dead-letter key of a system (see luaDLQ).
func (k keys) dlqBase(system string) string { return k.ns + ":{dlq:" + system + "}" }

// dlq is the dead-letter stream of a system (its receive and push stages).
func (k keys) dlq(system string) string { return k.dlqBase(system) + ":entries" }

// dlqIndex lists the dead-letter ids of one parked model|key of a stage.
func (k keys) dlqIndex(system, stage, park string) string {
	return k.dlqBase(system) + ":idx:" + stage + ":" + park
}

// parked is the hash of parked keys of a system's stage, with the number of
// dead letters that hold each one.
func (k keys) parked(system, stage string) string {
	return k.ns + ":{dlq:" + system + "}:parked:" + stage
}

// replayLock keeps two replays of one system's dead letters apart.
func (k keys) replayLock(system string) string { return k.ns + ":{dlq:" + system + "}:replaying" }

// sourcePrefix prefixes the keys a source's deliveries keep: delivery ids
// seen (":seen:ID") and object versions (":v:MODEL|KEY").
func (k keys) sourcePrefix(source string) string { return k.ns + ":{src:" + source + "}" }

// readerLock is the reader lock of a source system.
func (k keys) readerLock(source string) string { return k.ns + ":{src:" + source + "}:lock" }

// fenceCounter numbers the holders of a source's reader lock.
func (k keys) fenceCounter(source string) string { return k.ns + ":{src:" + source + "}:fence" }

// checkpoint is a named cursor of a source system.
func (k keys) checkpoint(source, name string) string {
	return k.ns + ":{src:" + source + "}:checkpoint:" + name
}

// rateLimit is the GCRA state of a system's shared limit; redis_rate adds
// its own "rate:" prefix in front.
func (k keys) rateLimit(system string) string { return k.ns + ":{rl:" + system + "}" }

// barrier is one of a barrier's keys (arrived, owner, done) in a target's
// consumer group.
func (k keys) barrier(target, id, part string) string {
	return k.ns + ":{grp:" + target + "}:barrier:" + id + ":" + part
}

// topology records the partition count of each model.
func (k keys) topology() string { return k.ns + ":topology" }

// ingests is the sorted set of live ingest processes, scored by expiry.
func (k keys) ingests() string { return k.ns + ":{ingests}:members" }

// ingestInfo is the hash of what each live ingest last reported of itself.
func (k keys) ingestInfo() string { return k.ns + ":{ingests}:info" }

// sourceReport is the last progress report of a source's leading ingest.
func (k keys) sourceReport(source string) string { return k.ns + ":{src:" + source + "}:report" }

// parseStream splits a stream key into model and partition.
func (k keys) parseStream(key string) (model string, partition int, ok bool) {
	rest, found := strings.CutPrefix(key, k.ns+":{")
	if !found {
		return "", 0, false
	}
	rest, found = strings.CutSuffix(rest, "}:stream")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(rest[i+1:])
	if err != nil {
		return "", 0, false
	}
	return rest[:i], p, true
}
