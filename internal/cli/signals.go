package cli

import (
	"os"
	"time"
)

// sameStop is how close together two signals are taken for one request to
// stop. A terminal's Ctrl-C sends SIGINT to every process of the
// foreground group, and a script that runs the process usually forwards
// its own SIGTERM right after: both mean "stop", not "stop now".
const sameStop = time.Second

// watchSignals cancels at the first signal; a later one exits at once
// unless it comes within sameStop of the first. It returns when sigs is
// closed.
func watchSignals(sigs <-chan os.Signal, cancel func(), exit func(), now func() time.Time) {
	if _, ok := <-sigs; !ok {
		return
	}
	first := now()
	cancel()
	for range sigs {
		if now().Sub(first) < sameStop {
			continue
		}
		exit()
		return
	}
}
