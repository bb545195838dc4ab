package testenv

// ExitCode is the process's exit status once it has ended; -1 while it
// runs, or when a signal ended it.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
	default:
		return -1
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}
