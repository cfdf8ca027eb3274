//go:build !linux

package peer

import "context"

// waker is not available here: sends wait on their channels alone.
type waker struct{}

func newWaker() *waker { return nil }

func (w *waker) wake() {}

func (w *waker) await(ctx context.Context, ch <-chan Message) (Message, error) {
	panic("unreachable: newWaker returns nil")
}

func (w *waker) close() {}
