package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// dropChain holds DropInbound's rule so each call replaces the previous rate
// instead of stacking rules, and rules a test added itself stay untouched.
const dropChain = "lanchat-drop"

// Node is one namespace of a topology. Host and Router embed it so commands,
// sockets and packet loss work the same on either.
type Node struct {
	Name string // the name given to AddHost or Router
	NS   string // the namespace's full name, prefix included

	net *Net
}

// Command returns a command that runs name inside the namespace via
// `ip netns exec`, which execs the program, so cmd.Process.Pid is the program
// itself. If it is still running when the Net is cleaned up, it is killed
// first, because a live process would keep the deleted namespace alive.
func (nd *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return nd.command(nd.net.track(ctx), name, args...)
}

func (nd *Node) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	// Resolve here too because ip's execvp searches only PATH, which may lack sbin.
	if !strings.ContainsRune(name, filepath.Separator) {
		if p, err := lookTool(name); err == nil {
			name = p
		}
	}
	argv := append([]string{"netns", "exec", nd.NS, name}, args...)
	return exec.CommandContext(ctx, nd.net.ip, argv...)
}

// Run runs args inside the namespace and returns the combined output; the error includes it.
func (nd *Node) Run(args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("netns: Run needs a command")
	}
	// Untracked: Run waits for the program, and benchmarks may call it in a loop.
	out, err := nd.command(context.Background(), args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netns: %s: %s: %w: %s", nd.NS, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Do runs fn on a locked OS thread switched into the namespace and switches
// back afterwards. Sockets fn creates stay in the namespace and may be used
// from any goroutine later. Only that thread switches: goroutines fn starts,
// including the DNS resolver's, run in the original namespace. fn runs on its
// own goroutine, so it must not call t.FailNow; return an error instead.
// Close sockets before the test ends: an open socket keeps a deleted
// namespace, and its veth, alive.
func (nd *Node) Do(fn func() error) error {
	return runIn(filepath.Join(nsDir, nd.NS), fn)
}

// DropInbound makes the namespace drop that percentage of incoming UDP
// datagrams at random, using iptables' statistic match because this kernel has
// no tc netem. Only UDP: TCP would just retransmit, slowly, and the protocol's
// unreliable path is UDP. Each call replaces the previous rate; 0 drops nothing.
func (nd *Node) DropInbound(percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("netns: drop inbound: percent %d outside 0..100", percent)
	}
	ipt, err := lookTool("iptables")
	if err != nil {
		return fmt.Errorf("netns: drop inbound: %w", err)
	}
	if err := nd.resetDrop(ipt); err != nil {
		return fmt.Errorf("netns: drop inbound: %w", err)
	}
	if percent == 0 {
		return nil
	}
	p := strconv.FormatFloat(float64(percent)/100, 'f', 2, 64)
	_, err = nd.Run(ipt, "-w", "-A", dropChain, "-p", "udp",
		"-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP")
	if err != nil {
		return fmt.Errorf("netns: drop inbound: %w", err)
	}
	return nil
}

// resetDrop empties dropChain, creating it and hooking it into INPUT on first use.
func (nd *Node) resetDrop(ipt string) error {
	if _, err := nd.Run(ipt, "-w", "-F", dropChain); err == nil {
		return nil
	}
	if _, err := nd.Run(ipt, "-w", "-N", dropChain); err != nil {
		return err
	}
	_, err := nd.Run(ipt, "-w", "-A", "INPUT", "-j", dropChain)
	return err
}
