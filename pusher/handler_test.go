package pusher

import "testing"

// TestSeenPartitionsRemembersEveryPartition: a batch may come back to a
// partition after another (entries held back, then new ones read); the
// shortcut through the last partition must not forget the earlier ones.
func TestSeenPartitionsRemembersEveryPartition(t *testing.T) {
	t.Parallel()
	var s seenPartitions
	a, b, c := batchPartition{"product", 0}, batchPartition{"product", 1}, batchPartition{"price", 0}
	if s.has(batchPartition{}) || s.has(a) {
		t.Fatal("an empty batch has seen a partition")
	}
	for _, step := range []struct {
		add  batchPartition
		seen []batchPartition
		not  []batchPartition
	}{
		{a, []batchPartition{a}, []batchPartition{b, c}},
		{a, []batchPartition{a}, []batchPartition{b, c}},
		{b, []batchPartition{a, b}, []batchPartition{c}},
		{a, []batchPartition{a, b}, []batchPartition{c}},
		{c, []batchPartition{a, b, c}, nil},
	} {
		s.add(step.add)
		for _, p := range step.seen {
			if !s.has(p) {
				t.Fatalf("after adding %v: %v not seen", step.add, p)
			}
		}
		for _, p := range step.not {
			if s.has(p) {
				t.Fatalf("after adding %v: %v seen", step.add, p)
			}
		}
	}
}
