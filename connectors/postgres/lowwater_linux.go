package postgres

import (
	"net"
	"syscall"
)

// setLowWater sets the socket's receive low-water mark (SO_RCVLOWAT): the
// kernel reports the socket readable only once that many bytes wait, or the
// read deadline passes. A read still returns whatever is there.
func setLowWater(c net.Conn, bytes int) error {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok { // TLS
		c = u.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, bytes)
	}); err != nil {
		return err
	}
	return serr
}
