package peer

import (
	"context"
	"encoding/binary"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// waker is an eventfd in the netpoller: wake adds one to its counter, and
// a read blocks the waiter until the counter is non-zero.
type waker struct{ f *os.File }

// newWaker makes a waker, or returns nil when the kernel refuses an eventfd.
func newWaker() *waker {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil
	}
	return &waker{f: os.NewFile(uintptr(fd), "waker")} // non-blocking: polled
}

// wake wakes the waiter, if any; a wake with nobody waiting makes the next
// wait return at once, and await then checks its channel again.
func (w *waker) wake() {
	if w == nil {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	w.f.Write(one[:]) // fails only once closed: the waiter is gone
}

// await returns the result on ch once it is there, reading w between
// looks at ch; wakes left over from earlier results only cost a look.
func (w *waker) await(ctx context.Context, ch <-chan Message) (Message, error) {
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var buf [8]byte
	for {
		select {
		case m := <-ch:
			return m, nil
		default:
		}
		if _, err := w.f.Read(buf[:]); err != nil {
			if ctx.Err() != nil {
				return Message{}, ctx.Err()
			}
			// Cannot happen with a live eventfd; the channel still works.
			select {
			case m := <-ch:
				return m, nil
			case <-ctx.Done():
				return Message{}, ctx.Err()
			}
		}
	}
}

func (w *waker) close() { w.f.Close() }
