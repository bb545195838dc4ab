package connectors

import (
	"strings"
	"testing"
	"time"

	"github.com/sqlpipe/remix/config"
	"github.com/sqlpipe/remix/mixer"
)

// remix validate warns of a linger that will not do what it says, and a
// source lingers at most MaxLinger.
func TestLingerWarnings(t *testing.T) {
	t.Parallel()
	recv := mixer.NewReceiver()
	for _, c := range []struct {
		linger any
		recv   *mixer.Receiver
		want   string
		uses   time.Duration
	}{
		{20 * time.Millisecond, recv, "", 20 * time.Millisecond},
		{5 * time.Second, recv, "linger 5s is more than 1s: the source lingers 1s", time.Second},
		{20 * time.Millisecond, nil, "has no receive_mixer", 20 * time.Millisecond},
		{nil, nil, "", 0},
	} {
		sys := &config.System{Name: "shop", Settings: config.Settings{SettingLinger: {Value: time.Duration(0)}}, Receive: c.recv}
		if c.linger != nil {
			sys.Settings[SettingLinger] = config.Setting{Value: c.linger, Set: true}
		}
		got := strings.Join(LingerWarnings(sys), "\n")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("linger %v, receive mixer %v: warnings %q, want %q", c.linger, c.recv != nil, got, c.want)
		}
		if l := Linger(sys); l != c.uses {
			t.Errorf("linger %v: the source lingers %v, want %v", c.linger, l, c.uses)
		}
	}
}
