package ipmsg

import "strconv"

// wireError is a sentinel plus the detail that explains it, printed as
// "ipmsg: malformed packet: <detail>" like fmt.Errorf("%w: …") would. The
// package builds its messages with strconv instead of fmt because fmt
// imports os, time and syscall, which the codec must not depend on.
type wireError struct {
	kind   error
	detail string
}

func (e *wireError) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *wireError) Unwrap() error { return e.kind }

func errMalformed(detail string) error { return &wireError{ErrMalformed, detail} }
func errTooLarge(detail string) error  { return &wireError{ErrTooLarge, detail} }

// prefixError says where in a list a parse error happened.
func prefixError(err error, prefix string) error {
	if e, ok := err.(*wireError); ok {
		return &wireError{e.kind, prefix + e.detail}
	}
	return err
}

// ioError names the reader that failed, and wraps the reader's error so that
// callers can still test for io.ErrUnexpectedEOF or a timeout.
type ioError struct {
	op  string
	err error
}

func (e *ioError) Error() string { return "ipmsg: " + e.op + ": " + e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// overLimit reports n things (bytes, entries) against a limit.
func overLimit(what string, n int, unit string, limit int) error {
	return errTooLarge(what + itoa(n) + " " + unit + ", limit " + itoa(limit))
}

func itoa(n int) string { return strconv.Itoa(n) }

// quote shows network bytes in an error message: clipped and Go-quoted.
func quote(b []byte) string { return strconv.Quote(string(clip(b))) }

// clip shortens network bytes quoted in an error message.
func clip(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
