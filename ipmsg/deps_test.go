package ipmsg

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDeps keeps the codec pure (house style §3 and §12): it lists every
// package ipmsg depends on, directly or not, and fails on any that would let
// it do I/O, read the clock or log, or that come from higher layers.
func TestDeps(t *testing.T) {
	banned := map[string]string{
		"net":      "the codec takes bytes; sockets belong to discovery and peer",
		"os":       "files, environment and stdio belong to the caller",
		"syscall":  "system calls mean I/O; the codec has none",
		"time":     "no clock in the codec: callers pass times in as numbers",
		"log":      "codecs return errors and never log (style §5, §8)",
		"log/slog": "codecs return errors and never log; loggers are passed to long-lived types only",
		"fmt":      "fmt imports os, time and syscall; build messages with strconv",
	}
	const self = "github.com/lanchat/lanchat/ipmsg"
	out, err := exec.Command(goTool(t), "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if reason, ok := banned[dep]; ok {
			t.Errorf("ipmsg depends on %s: %s", dep, reason)
		}
		if strings.HasPrefix(dep, "github.com/lanchat/lanchat/") && dep != self {
			t.Errorf("ipmsg depends on %s: ipmsg is the bottom layer, and imports flow towards it", dep)
		}
	}
}

// goTool finds the go command that is running the tests.
func goTool(t *testing.T) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(p); err != nil {
		t.Skipf("no go command: %v", err)
	}
	return p
}
