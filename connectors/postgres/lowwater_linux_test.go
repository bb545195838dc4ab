package postgres

import (
	"net"
	"syscall"
	"testing"
)

// TestSetLowWater: the mark is set on the socket under a net.Conn, and set
// back.
func TestSetLowWater(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	get := func() int {
		t.Helper()
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		if err := raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT) }); err != nil || gerr != nil {
			t.Fatal(err, gerr)
		}
		return v
	}
	for _, want := range []int{lowWaterBytes, 1} {
		if err := setLowWater(c, want); err != nil {
			t.Fatal(err)
		}
		if got := get(); got != want {
			t.Fatalf("SO_RCVLOWAT is %d, want %d", got, want)
		}
	}
	if err := setLowWater(struct{ net.Conn }{c}, lowWaterBytes); err != nil { // no socket to set: nothing done
		t.Fatal(err)
	}
	if got := get(); got != 1 {
		t.Fatalf("SO_RCVLOWAT is %d after a conn without a socket, want 1", got)
	}
}
