// Package leakcheck lets tests check that what they started has ended: the
// goroutine count returns to where it was. It is imported only by tests.
package leakcheck

import (
	"runtime"
	"testing"
	"time"
)

// Goroutines polls for up to 3 s until at most n goroutines run, and fails
// the test with every goroutine's stack if they do not.
func Goroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, had %d before:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
