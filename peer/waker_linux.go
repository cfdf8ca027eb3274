package peer

import (
	"context"
	"encoding/binary"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waker is an eventfd in the netpoller. wake adds one to its counter, and
// each such write is an edge the netpoller reports (Go registers files
// edge-triggered), which readies the waiter parked on it. The counter is
// never read back: a read would be one more system call per message, and
// nothing needs the count, only the edge.
type waker struct {
	f  *os.File
	rc syscall.RawConn
}

// newWaker makes a waker, or returns nil when the kernel refuses an eventfd.
func newWaker() *waker {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "waker") // non-blocking: polled
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	return &waker{f: f, rc: rc}
}

// wake wakes the waiter, if any. A wake with nobody waiting costs a later
// waiter one look at its channel.
func (w *waker) wake() {
	if w == nil {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	w.f.Write(one[:]) // fails only once closed: the waiter is gone
}

// await returns the result on ch once it is there. It looks at ch, and
// parks until the next wake when the result is not there yet. A result is
// always sent before its wake, and the netpoller forgets earlier wakes
// before the first look, so none is missed.
func (w *waker) await(ctx context.Context, ch <-chan Message) (Message, error) {
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var m Message
	got := false
	err := w.rc.Read(func(uintptr) bool {
		select {
		case m = <-ch:
			got = true
			return true
		default:
			return false // park until the next wake
		}
	})
	switch {
	case got:
		return m, nil
	case ctx.Err() != nil:
		return Message{}, ctx.Err()
	}
	_ = err // cannot happen with a live eventfd; the channel still works
	return awaitChan(ctx, ch)
}

func (w *waker) close() { w.f.Close() }
