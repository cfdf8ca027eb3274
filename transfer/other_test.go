//go:build !linux

package transfer

import "errors"

func syscallMkfifo(string) error { return errors.ErrUnsupported }
