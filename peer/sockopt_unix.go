//go:build unix

package peer

import (
	"errors"
	"syscall"
)

// setBroadcast enables SO_BROADCAST, which presence announcements need.
func setBroadcast(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
