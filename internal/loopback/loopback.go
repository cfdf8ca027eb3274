// Package loopback helps tests that run real nodes on 127.0.0.1.
package loopback

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a port that is free for both UDP and TCP on 127.0.0.1,
// as a node needs for IPMsg (UDP) and its file transfers (TCP).
func FreePort(tb testing.TB) int {
	tb.Helper()
	for range 50 {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	tb.Fatal("no free UDP+TCP port pair")
	return 0
}
