package connectors

import (
	"fmt"
	"time"

	"github.com/sqlpipe/remix/config"
)

// SettingLinger is the name of a streaming source's linger setting: how
// long finished transactions of a quiet stream wait for later ones to join
// their batch. Sources that read a log (postgres, mysql) share its meaning:
//
//   - 0, the default, hands each finished transaction on at once: the
//     lowest latency, and a wake-up, a publish and a target write per
//     transaction at a trickle.
//   - Above 0, the reader holds the first finished transaction of a quiet
//     stream that long, sleeping rather than waking for each one, then
//     reads what came meanwhile and hands it all on as one batch. It never
//     sleeps while catching up or inside a transaction, and a batch still
//     goes on when it is full.
const SettingLinger = "linger"

// MaxLinger caps the linger setting: longer would hold a quiet stream's
// changes for seconds, which no one asking for fewer batches wants.
const MaxLinger = time.Second

// LingerSetting is the linger key of a source's spec.
func LingerSetting() config.SettingSpec {
	return config.SettingSpec{Name: SettingLinger, Kind: config.KindDuration, Default: time.Duration(0), Min: config.Float64(0),
		Doc: "as a source: how long finished transactions of a quiet stream wait for later ones to join their batch (at most 1s); 0 hands each on at once"}
}

// Linger is the linger a source applies: the setting, capped at MaxLinger.
func Linger(sys *config.System) time.Duration {
	return min(sys.Settings.Duration(SettingLinger), MaxLinger)
}

// LingerWarnings says what a system's linger setting will not do as
// written: for a spec's Warn.
func LingerWarnings(sys *config.System) []string {
	st := sys.Settings[SettingLinger]
	if !st.Set {
		return nil
	}
	switch d := sys.Settings.Duration(SettingLinger); {
	case sys.Receive == nil && d > 0:
		return []string{"linger is a source's setting and this system has no receive_mixer: it changes nothing"}
	case d > MaxLinger:
		return []string{fmt.Sprintf("linger %v is more than %v: the source lingers %v", d, MaxLinger, MaxLinger)}
	}
	return nil
}
