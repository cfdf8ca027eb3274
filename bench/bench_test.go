//go:build linux

// Package bench measures lanchat between network namespaces and prints
// every figure beside a raw-socket baseline taken in the same run, between
// the same namespaces. Run it as root:
//
//	go test -run '^$' -bench . -benchtime 1x ./bench
//
// Without root (or off Linux) every benchmark skips.
package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/netns"
)

// TestMain runs the benchmarks; with echoResponderEnv set, the binary is
// instead the echo responder process of the send baselines (see
// startEchoResponder).
func TestMain(m *testing.M) {
	if user := os.Getenv(echoResponderEnv); user != "" {
		if err := runEchoResponder(user); err != nil {
			fmt.Fprintln(os.Stderr, "echo responder:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// perSecond is how many of n operations fit in a second at total.
func perSecond(n int, total time.Duration) float64 { return float64(n) / total.Seconds() }

// listenUDP opens a broadcast-capable UDP socket on 0.0.0.0:port inside h.
// The socket stays in h's namespace whichever goroutine uses it later.
func listenUDP(h *netns.Host, port int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var conn *net.UDPConn
	err := h.Do(func() error {
		pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			return err
		}
		conn = pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listen in %s: %w", h.Name, err)
	}
	return conn, nil
}

// localPort is the port conn is bound to.
func localPort(conn *net.UDPConn) uint16 { return conn.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// addrPort is h's address with port.
func addrPort(h *netns.Host, port uint16) netip.AddrPort { return netip.AddrPortFrom(h.Addr, port) }
