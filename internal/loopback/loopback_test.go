package loopback

import (
	"fmt"
	"net"
	"testing"
)

func TestFreePortTakesBoth(t *testing.T) {
	port := FreePort(t)
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("UDP %d: %v", port, err)
	}
	defer u.Close()
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("TCP %d: %v", port, err)
	}
	l.Close()
}
