//go:build !linux

package netns

import (
	"errors"
	"fmt"
)

// runIn exists so the package builds everywhere; Require skips off Linux.
func runIn(path string, _ func() error) error {
	return fmt.Errorf("netns: enter %s: %w", path, errors.ErrUnsupported)
}
