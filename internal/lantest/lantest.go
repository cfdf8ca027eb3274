// Package lantest runs real lanchat processes for integration tests and
// benchmarks: it builds the binary once, starts nodes inside network
// namespace hosts and drives them through the command line, as a user's
// script would. It is imported only by tests.
package lantest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary builds the headless lanchat once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		sweepBinaries()
		dir, err := os.MkdirTemp("", fmt.Sprintf("lanchat-bin-%d-", os.Getpid()))
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "lanchat")
		cmd := exec.Command(goTool(), "build", "-o", build.path, "github.com/lanchat/lanchat/cmd/lanchat")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("build lanchat: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// sweepBinaries removes the binaries of test processes that have ended: a
// test process cannot remove its own at exit.
func sweepBinaries() {
	if runtime.GOOS != "linux" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "lanchat-bin-*-*"))
	for _, d := range dirs {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), "lanchat-bin-"), "-")
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// Node is a `lanchat serve` process on a namespace host.
type Node struct {
	t    testing.TB
	Host *netns.Host
	Name string
	Data string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
	// cli prefixes the short commands: "relay" for a relay, whose commands
	// are `lanchat relay SUB`.
	cli []string
}

// Start runs `lanchat serve` on h with a fresh data folder and waits until
// its control socket answers. It is stopped (SIGTERM) at cleanup. The
// node's login name is the host's name, since namespace hosts share the
// machine's host name and would otherwise all be the same user@host.
func Start(t testing.TB, h *netns.Host, name string, args ...string) *Node {
	t.Helper()
	return start(t, h, t.TempDir(), h.Name, name, args)
}

// StartAs is Start with the node's login name set to user (through $USER).
// Namespace hosts share the machine's host name, so nodes started with Start
// all have the same user@host identity and their peers merge them into one
// contact; give each node its own user to make them distinct, as separate
// machines would be.
func StartAs(t testing.TB, h *netns.Host, user, name string, args ...string) *Node {
	t.Helper()
	return start(t, h, t.TempDir(), user, name, args)
}

// StartWith is StartAs on an existing data folder, typically that of a node
// stopped or killed earlier in the test: the new process keeps its
// identity, settings and history, as a restarted lanchat would.
func StartWith(t testing.TB, h *netns.Host, data, user, name string, args ...string) *Node {
	t.Helper()
	return start(t, h, data, user, name, args)
}

func start(t testing.TB, h *netns.Host, data, user, name string, args []string) *Node {
	t.Helper()
	n := &Node{t: t, Host: h, Name: name, Data: data, log: &syncBuffer{}, done: make(chan error, 1)}
	return n.run(user, append([]string{"serve", "--data", n.Data, "--name", name, "--log", "debug"}, args...))
}

// StartRelay runs `lanchat relay` on h with the data folder data (a fresh
// one when empty), listening on h's address at TCP and QUIC port 4001, and
// waits until it answers. Its short commands are `lanchat relay SUB`: use
// CLI("invite"), CLI("members") and so on.
func StartRelay(t testing.TB, h *netns.Host, data string, args ...string) *Node {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	n := &Node{t: t, Host: h, Name: "relay", Data: data, log: &syncBuffer{}, done: make(chan error, 1), cli: []string{"relay"}}
	a := h.Addr.String()
	return n.run("", append([]string{"relay", "--data", data, "--log", "debug",
		"--listen", "/ip4/" + a + "/tcp/4001", "--listen", "/ip4/" + a + "/udp/4001/quic-v1"}, args...))
}

// Invite makes a relay invite code.
func (n *Node) Invite() string {
	n.t.Helper()
	out, err := n.CLI("invite")
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func (n *Node) run(user string, all []string) *Node {
	t := n.t
	t.Helper()
	h := n.Host
	name := n.Name
	n.cmd = h.Command(context.Background(), Binary(t), all...)
	if user != "" {
		n.cmd.Env = append(os.Environ(), "USER="+user)
	}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, n.log.String())
		}
	})
	n.waitReady()
	return n
}

func (n *Node) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-n.done:
			n.t.Fatalf("%s exited: %v\n%s", n.Name, err, n.log.String())
		default:
		}
		if _, err := n.CLI("status"); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("%s did not start:\n%s", n.Name, n.log.String())
}

// Stop ends the node with SIGTERM (it says BR_EXIT) and waits; it kills
// it after 10 s. Calling it twice is fine.
func (n *Node) Stop() error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.done <- err
		return err
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		err := <-n.done
		n.done <- err
		return fmt.Errorf("%s did not stop on SIGTERM", n.Name)
	}
}

// Kill ends the node with SIGKILL: no goodbye.
func (n *Node) Kill() {
	n.cmd.Process.Kill()
	err := <-n.done
	n.done <- err
}

// PID is the process ID of the `lanchat serve` process, for reading its
// /proc entries (memory, descriptors).
func (n *Node) PID() int { return n.cmd.Process.Pid }

// Log returns what the node has logged so far.
func (n *Node) Log() string { return n.log.String() }

// CLI runs `lanchat SUB --data DIR ARGS...` against this node. The short
// commands reach the node through its data folder, so they run in the
// test's own namespace.
func (n *Node) CLI(sub string, args ...string) (string, error) {
	return n.CLIInput(nil, sub, args...)
}

// CLIWith is CLI for a Node value made by the test itself (say, one that
// points at a data folder where nothing runs).
func (n *Node) CLIWith(t testing.TB, sub string, args ...string) (string, error) {
	n.t = t
	return n.CLI(sub, args...)
}

// CLIInput is CLI with standard input.
func (n *Node) CLIInput(stdin []byte, sub string, args ...string) (string, error) {
	all := append(append(append([]string{}, n.cli...), sub, "--data", n.Data), args...)
	cmd := exec.Command(Binary(n.t), all...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lanchat %s: %w: %s", strings.Join(all, " "), err, out)
	}
	return string(out), nil
}

// Peers returns the node's contacts.
func (n *Node) Peers() []peer.Contact {
	n.t.Helper()
	out, err := n.CLI("peers", "--json")
	if err != nil {
		n.t.Fatal(err)
	}
	var cs []peer.Contact
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var c peer.Contact
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			n.t.Fatalf("peers: %v in %q", err, line)
		}
		cs = append(cs, c)
	}
	return cs
}

// WaitPeers polls until the node lists every nick in want (and reports
// the contacts), or fails the test after timeout.
func (n *Node) WaitPeers(timeout time.Duration, want ...string) []peer.Contact {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cs := n.Peers()
		if hasAll(cs, want) {
			return cs
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s lists %v, want %v", n.Name, nicks(cs), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasAll(cs []peer.Contact, want []string) bool {
	for _, w := range want {
		found := false
		for _, c := range cs {
			found = found || c.Nick == w
		}
		if !found {
			return false
		}
	}
	return true
}

func nicks(cs []peer.Contact) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Nick
	}
	return out
}

// Event is one line of `lanchat events --json`.
type Event struct {
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// Message decodes a message event.
func (e Event) Message() (peer.Message, bool) {
	var me peer.MessageEvent
	if e.Kind != "message" || json.Unmarshal(e.Data, &me) != nil {
		return peer.Message{}, false
	}
	return me.Message, true
}

// Events starts `lanchat events --json` and returns its events as they
// come. The stream ends at cleanup.
func (n *Node) Events() <-chan Event {
	n.t.Helper()
	cmd := exec.Command(Binary(n.t), "events", "--data", n.Data, "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	ch := make(chan Event, 65536)
	ready := make(chan struct{})
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		for sc.Scan() {
			var e Event
			switch {
			case json.Unmarshal(sc.Bytes(), &e) != nil:
			case e.Kind == "ready":
				close(ready)
			default:
				ch <- e
			}
		}
	}()
	n.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		n.t.Fatalf("%s: events stream did not start", n.Name)
	}
	return ch
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
