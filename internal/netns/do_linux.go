//go:build linux

package netns

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// runIn runs fn in the namespace at path on a fresh goroutine, so a thread
// that cannot be switched back dies with that goroutine instead of returning
// to the scheduler in the wrong namespace.
func runIn(path string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		// Stays set only if fn leaves through runtime.Goexit, e.g. t.FailNow.
		err := errors.New("netns: Do: fn exited via runtime.Goexit")
		defer func() { done <- err }()
		err = onThreadIn(path, fn)
	}()
	return <-done
}

func onThreadIn(path string, fn func() error) (err error) {
	runtime.LockOSThread()
	unlock := true
	defer func() {
		if unlock {
			runtime.UnlockOSThread()
		}
	}()
	back, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open own namespace: %w", err)
	}
	defer unix.Close(back)
	if err := enter(path); err != nil {
		return err
	}
	defer func() {
		if rerr := unix.Setns(back, unix.CLONE_NEWNET); rerr != nil {
			// Keep the thread locked: the runtime then retires it with this goroutine.
			unlock = false
			err = errors.Join(err, fmt.Errorf("netns: switch back: %w", rerr))
		}
	}()
	return fn()
}

func enter(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netns: enter %s: %w", path, err)
	}
	return nil
}
