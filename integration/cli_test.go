package integration

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
)

// TestPortTaken starts a second node on a host whose port 2425 is taken:
// it must exit at once and tell the user what to do, not crash or hang.
func TestPortTaken(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	n := netns.New(t)
	h := n.Segment(netip.MustParsePrefix("10.74.1.0/24")).AddHost("a")
	lantest.Start(t, h, "first")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Command(ctx, lantest.Binary(t), "serve", "--data", t.TempDir(), "--name", "second").CombinedOutput()
	if err == nil {
		t.Fatalf("second node on a taken port exited 0:\n%s", out)
	}
	for _, want := range []string{"port 2425 is already used", "--port"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("message %q does not say %q", out, want)
		}
	}
	if strings.Contains(string(out), "panic") {
		t.Errorf("second node panicked:\n%s", out)
	}
}

// TestNotRunning checks the short commands' message when no node runs.
func TestNotRunning(t *testing.T) {
	t.Parallel()
	out, err := (&lantest.Node{Data: t.TempDir()}).CLIWith(t, "peers")
	if err == nil || !strings.Contains(out, "no lanchat is running") || !strings.Contains(out, "lanchat serve") {
		t.Errorf("peers without a node: err %v, output %q", err, out)
	}
}
