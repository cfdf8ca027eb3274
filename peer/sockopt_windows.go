//go:build windows

package peer

import (
	"errors"
	"syscall"
)

// setBroadcast enables SO_BROADCAST, which presence announcements need.
func setBroadcast(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// wsaeaddrinuse is Winsock's "address already in use".
const wsaeaddrinuse = syscall.Errno(10048)

func isAddrInUse(err error) bool { return errors.Is(err, wsaeaddrinuse) }
