package httpserver

import "testing"

// TestReasonLines: one reason a line, no trailing spaces, the further
// lines of a reason indented under it.
func TestReasonLines(t *testing.T) {
	t.Parallel()
	got := ReasonLines([]string{"shop: streaming ", "warehouse: cannot open: target warehouse does not fit its push mixer:\nw.yaml:3:5: no table\nw.yaml:9:5: no column  ", "", "redis: ok"})
	want := "shop: streaming\nwarehouse: cannot open: target warehouse does not fit its push mixer:\n  w.yaml:3:5: no table\n  w.yaml:9:5: no column\nredis: ok\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}
