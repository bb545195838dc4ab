//go:build !unix

package cli

import "time"

// cpuTime cannot be read here: the process keeps the runtime's default.
func cpuTime() (time.Duration, bool) { return 0, false }
