package main

import (
	"fmt"
	"io"
)

// openDesktop is the entry point of `lanchat` without arguments. The
// desktop app is not built in yet, so it shows the help.
func openDesktop(stdout, _ io.Writer) int {
	fmt.Fprint(stdout, usage)
	return 0
}
