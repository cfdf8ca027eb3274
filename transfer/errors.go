package transfer

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
)

// Errors a Fetch can be told apart by; each returned error wraps at most
// one of them, with the detail in its message.
var (
	// ErrUnsafeName means a peer sent a name that is not a plain file name
	// (see CheckName). Nothing was written under it.
	ErrUnsafeName = errors.New("unsafe file name")
	// ErrIncomplete means the connection ended before the offered bytes (or
	// the end of the folder stream) arrived. A file's .part is kept, so a
	// later Fetch with Request.Resume can continue it.
	ErrIncomplete = errors.New("transfer incomplete")
	// ErrOversize means the sender sent more than the offered size: its
	// file changed since the offer. Nothing is kept.
	ErrOversize = errors.New("sender sent more than offered")
	// ErrBadStream means a folder stream broke its grammar: it did not start
	// with its folder, climbed above it, or went on after leaving it.
	ErrBadStream = errors.New("malformed folder stream")
	// ErrTooLarge means a folder stream went over one of the ClientConfig
	// limits (bytes, entries or depth).
	ErrTooLarge = errors.New("folder over limit")
	// ErrDiskFull means the destination ran out of space. A file's .part
	// is kept.
	ErrDiskFull = errors.New("disk full")
)

// diskFull wraps err with ErrDiskFull when it is the system's "no space"
// error, and returns it unchanged otherwise.
func diskFull(err error) error {
	var errno syscall.Errno
	if err == nil || !errors.As(err, &errno) {
		return err
	}
	full := errno == syscall.ENOSPC
	if runtime.GOOS == "windows" {
		// ERROR_HANDLE_DISK_FULL and ERROR_DISK_FULL; syscall.ENOSPC is an
		// invented value there that no call returns.
		full = errno == 39 || errno == 112
	}
	if full {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}
