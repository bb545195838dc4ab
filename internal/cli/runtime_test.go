package cli

import "testing"

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ container, def, want int64 }{
		{0, IngestMemoryLimit, 80 << 20},          // no container: the binary's own
		{0, FleetMemoryLimit, 64 << 20},           // likewise
		{512 << 20, IngestMemoryLimit, 429496728}, // a container: 80% of its limit, whatever the binary
		{512 << 20, FleetMemoryLimit, 429496728},
	} {
		if got := memoryLimit(tc.container, tc.def); got != tc.want {
			t.Errorf("memoryLimit(%d, %d) = %d, want %d", tc.container, tc.def, got, tc.want)
		}
	}
}
