package coord

import (
	"fmt"
	"testing"
)

func twoModels(n int) []*partition {
	var all []*partition
	for _, m := range []string{"customer", "order"} {
		for i := range n {
			all = append(all, &partition{model: m, index: i, stream: fmt.Sprintf("%s:%d", m, i)})
		}
	}
	return all
}

// TestBalancedOrderSpreadsModels: the first partitions acquire tries are
// of the model the consumer owns fewest of, alternating as it takes them.
func TestBalancedOrderSpreadsModels(t *testing.T) {
	t.Parallel()
	all := twoModels(8)
	for range 100 {
		order := balancedOrder(all, map[string]int{"customer": 2})
		if order[0].model != "order" || order[1].model != "order" {
			t.Fatalf("a consumer owning 2 customer partitions tries %s and %s first", order[0].stream, order[1].stream)
		}
		n := map[string]int{"customer": 2}
		for i, p := range order[:10] {
			n[p.model]++
			if d := n["customer"] - n["order"]; d > 1 || d < -1 {
				t.Fatalf("after %d partitions the models are %v apart", i+1, n)
			}
		}
		if len(order) != len(all) {
			t.Fatalf("order lost partitions: %d of %d", len(order), len(all))
		}
	}
}

// TestSurplusKeepsModelsSpread: what a consumer gives up comes from the
// model it holds most of, and partitions with a batch in flight go last.
func TestSurplusKeepsModelsSpread(t *testing.T) {
	t.Parallel()
	all := twoModels(8)
	keeping := append(append([]*partition{}, all[:6]...), all[8:10]...) // 6 customer, 2 order
	keeping[0].batch = true
	out := surplus(keeping, 4)
	for _, p := range out {
		if p.model != "customer" {
			t.Fatalf("gave up %s while holding 6 customer partitions and 2 order", p.stream)
		}
		if p == keeping[0] {
			t.Fatalf("gave up %s, whose batch is being written, while idle ones were left", p.stream)
		}
	}
	if got := surplus(keeping, 0); got != nil {
		t.Fatalf("surplus of 0: %v", got)
	}
	if got := surplus(keeping, 20); len(got) != len(keeping) {
		t.Fatalf("surplus of more than kept: %d, want %d", len(got), len(keeping))
	}
}

// TestPushersJoiningSpreadEveryModel plays the lease rounds of three
// pushers joining one after another over two models of 8 partitions each:
// every model ends with partitions at every pusher.
func TestPushersJoiningSpreadEveryModel(t *testing.T) {
	t.Parallel()
	for run := range 200 {
		all := twoModels(8)
		owner := map[*partition]int{}
		owned := func(c int) []*partition {
			var ps []*partition
			for _, p := range all {
				if o, ok := owner[p]; ok && o == c {
					ps = append(ps, p)
				}
			}
			return ps
		}
		round := func(c, live, rank int) {
			share := shareOf(len(all), live, rank)
			mine := map[string]int{}
			for _, p := range owned(c) {
				mine[p.model]++
			}
			for _, p := range surplus(owned(c), len(owned(c))-share) {
				delete(owner, p)
			}
			var free []*partition
			for _, p := range all {
				if _, ok := owner[p]; !ok {
					free = append(free, p)
				}
			}
			want := share - len(owned(c))
			for _, p := range balancedOrder(free, mine) {
				if want <= 0 {
					break
				}
				owner[p] = c
				want--
			}
		}
		round(0, 1, 0)
		round(1, 2, 1)
		round(0, 2, 0)
		round(1, 2, 1)
		round(2, 3, 2)
		for range 3 {
			for c := range 3 {
				round(c, 3, c)
			}
		}
		for _, m := range []string{"customer", "order"} {
			owners := map[int]int{}
			for p, c := range owner {
				if p.model == m {
					owners[c]++
				}
			}
			if len(owners) != 3 {
				t.Fatalf("run %d: %s partitions held by %v, not by all three pushers", run, m, owners)
			}
		}
	}
}
