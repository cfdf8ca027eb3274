//go:build !cgo

package main

import (
	"fmt"
	"io"
)

// openDesktop is the entry point of `lanchat` without a command. The
// desktop app needs cgo, which this build lacks: without flags it shows the
// help; with node flags it says where the node went.
func openDesktop(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "lanchat: this build has no desktop app (it was built without cgo); run `lanchat serve` with these flags for a headless node")
		return 2
	}
	fmt.Fprint(stdout, usage)
	return 0
}
