package coord

import "math/rand/v2"

// A consumer's share of a target's partitions counts every model's
// partitions together; which partitions make up the share is chosen model
// by model, so each model's partitions spread over the consumers as evenly
// as the share allows (8 partitions of each of two models over 3 pushers:
// 3, 3 and 2 of each, not one pusher holding a model alone). A busy model
// then gets every pusher's writers, not only those of the pushers that
// happened to take its partitions.

// balancedOrder orders free partitions for acquire, which takes them from
// the front: each next one is of the model this consumer would own fewest
// of (mine counts what it owns per model), ties broken at random, so a
// consumer that gets only some of them still holds a spread of models.
func balancedOrder(free []*partition, mine map[string]int) []*partition {
	byModel, models := groupByModel(free)
	for _, m := range models {
		ps := byModel[m]
		rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	}
	count := map[string]int{}
	for _, m := range models {
		count[m] = mine[m]
	}
	out := make([]*partition, 0, len(free))
	for len(out) < len(free) {
		best := ""
		for _, m := range models {
			if len(byModel[m]) > 0 && (best == "" || count[m] < count[best]) {
				best = m
			}
		}
		out = append(out, byModel[best][0])
		byModel[best] = byModel[best][1:]
		count[best]++
	}
	return out
}

// surplus picks n of the given partitions (those a consumer keeps) to give
// up: each next one from the model it would keep most of, so what it keeps
// stays spread over the models.
func surplus(keeping []*partition, n int) []*partition {
	if n <= 0 {
		return nil
	}
	byModel, models := groupByModel(keeping)
	var out []*partition
	for len(out) < n && len(out) < len(keeping) {
		best := ""
		for _, m := range models {
			if best == "" || len(byModel[m]) > len(byModel[best]) {
				best = m
			}
		}
		ps := byModel[best]
		// Prefer one with no batch being written, so it can go at once.
		pick := 0
		for i, p := range ps {
			if !p.batch && p.canGo(false) {
				pick = i
				break
			}
		}
		out = append(out, ps[pick])
		byModel[best] = append(ps[:pick:pick], ps[pick+1:]...)
	}
	return out
}

// groupByModel groups partitions by model, in their order, and lists the
// models in random order (ties between models then fall at random).
func groupByModel(parts []*partition) (map[string][]*partition, []string) {
	byModel := map[string][]*partition{}
	var models []string
	for _, p := range parts {
		if _, ok := byModel[p.model]; !ok {
			models = append(models, p.model)
		}
		byModel[p.model] = append(byModel[p.model], p)
	}
	rand.Shuffle(len(models), func(i, j int) { models[i], models[j] = models[j], models[i] })
	return byModel, models
}
