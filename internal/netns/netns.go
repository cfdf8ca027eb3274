// Package netns builds throwaway network-namespace topologies (switched segments, hosts, routers, NAT routers) so tests and benchmarks can send real LAN traffic without touching the machine's own network.
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

const (
	// nsDir is where `ip netns add` bind-mounts named namespaces; Do opens them from here.
	nsDir = "/run/netns"
	// nameTag starts every namespace name so leftovers are recognisable in `ip netns list`.
	nameTag = "lc"
	// bridgeName is the same in every switch namespace: each bridge has a namespace to itself.
	bridgeName = "br0"
	// hostIf is a host's only interface; it cannot clash because every host has its own namespace.
	hostIf = "eth0"
)

// Require skips the test unless running as root on Linux with the `ip` command available.
func Require(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("netns: network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("netns: creating network namespaces needs root")
	}
	if _, err := lookTool("ip"); err != nil {
		t.Skipf("netns: %v", err)
	}
}

// RequireIptables is Require plus the iptables command, which DropInbound needs.
func RequireIptables(t testing.TB) {
	t.Helper()
	Require(t)
	if _, err := lookTool("iptables"); err != nil {
		t.Skipf("netns: %v", err)
	}
}

// lookTool finds an administration command, also in the sbin directories,
// because non-login root shells and CI runners often lack them on PATH.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in the sbin directories: %w", name, exec.ErrNotFound)
}

// Net is one topology. All its namespace names start with the same short
// random prefix, so parallel tests never collide and leftovers are easy to spot.
// Methods that build the topology fail the test on error, so call them from
// the test's own goroutine.
type Net struct {
	t      testing.TB
	prefix string
	ip     string

	mu       sync.Mutex // serialises topology changes so routes and address allocation stay consistent
	names    []string   // namespaces in creation order, deleted in reverse
	cancels  []context.CancelFunc
	switches int
}

// New returns an empty topology and registers a t.Cleanup that deletes every
// namespace it made, stopping programs started with Command first. It touches
// no other namespace or process.
func New(t testing.TB) *Net {
	t.Helper()
	ip, err := lookTool("ip")
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	prefix, err := freePrefix()
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	n := &Net{t: t, prefix: prefix, ip: ip}
	t.Cleanup(n.cleanup)
	return n
}

// freePrefix draws a prefix no existing namespace uses. A simultaneous draw of
// the same prefix elsewhere still cannot merge topologies: `ip netns add`
// refuses existing names, so the later test fails loudly instead.
func freePrefix() (string, error) {
	for range 8 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random prefix: %w", err)
		}
		p := nameTag + hex.EncodeToString(b[:])
		taken, err := filepath.Glob(filepath.Join(nsDir, p+"-*"))
		if err != nil {
			return "", fmt.Errorf("look for prefix %s: %w", p, err)
		}
		if len(taken) == 0 {
			return p, nil
		}
	}
	return "", errors.New("no unused namespace prefix after 8 draws")
}

// cleanup stops tracked programs, because a live process would keep its
// namespace and veths alive unnamed, then deletes namespaces newest first so
// hosts go before the switches they plug into.
func (n *Net) cleanup() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, cancel := range n.cancels {
		cancel()
	}
	for i := len(n.names) - 1; i >= 0; i-- {
		if err := n.run("netns", "del", n.names[i]); err != nil {
			n.t.Errorf("netns: cleanup: %v", err)
		}
	}
	n.names, n.cancels = nil, nil
}

// run runs `ip args...`; the error carries ip's output because that is the only diagnosis.
func (n *Net) run(args ...string) error {
	out, err := exec.Command(n.ip, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// addNS creates namespace prefix-suffix with lo up; the caller holds n.mu.
// It records the name before configuring it so a half-built namespace is still deleted.
func (n *Net) addNS(suffix string) (string, error) {
	if suffix == "" || strings.ContainsAny(suffix, "/ \t\n") {
		return "", fmt.Errorf("bad node name %q", suffix)
	}
	ns := n.prefix + "-" + suffix
	if err := n.run("netns", "add", ns); err != nil {
		return "", err
	}
	n.names = append(n.names, ns)
	if err := n.run("-n", ns, "link", "set", "lo", "up"); err != nil {
		return "", err
	}
	return ns, nil
}

// track ties ctx to the Net so cleanup can stop a program before deleting its namespace.
func (n *Net) track(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	n.mu.Lock()
	n.cancels = append(n.cancels, cancel)
	n.mu.Unlock()
	return ctx
}
