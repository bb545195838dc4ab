package connectors

// ProblemReporter is a source that keeps reading while it cannot deliver
// every change whole: for example while a column its receive mixer reads is
// gone from a table, whose changes are then dead-lettered. Problem says
// what is wrong, or returns nil. The ingest reports a problem in /readyz
// (not ready) and in a metric. Checked with a type assertion.
type ProblemReporter interface {
	Problem() error
}
