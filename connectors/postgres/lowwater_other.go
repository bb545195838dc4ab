//go:build !linux

package postgres

import "net"

// setLowWater does nothing where SO_RCVLOWAT does not delay readiness.
func setLowWater(net.Conn, int) error { return nil }
