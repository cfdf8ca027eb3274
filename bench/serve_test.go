//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/control"
	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
)

// serveProc is a `lanchat serve` process started without waiting for it, so
// that many start together. lantest.Start waits for each node in turn and
// polls with a `lanchat status` process every 20 ms, which on a small
// machine would serialise the starts and load the CPU being measured.
type serveProc struct {
	host *netns.Host
	user string // $USER: namespace hosts share a host name, so users keep identities apart
	data string
	cmd  *exec.Cmd
	log  bytes.Buffer // written by the process's output copiers; read after it exits
	done chan error   // the result of Wait, then closed
}

// startServe starts `lanchat serve` on h and returns at once.
func startServe(tb testing.TB, h *netns.Host, user string, args ...string) *serveProc {
	tb.Helper()
	p := &serveProc{host: h, user: user, data: tb.TempDir(), done: make(chan error, 1)}
	all := append([]string{"serve", "--data", p.data, "--name", user, "--log", "debug"}, args...)
	p.cmd = h.Command(context.Background(), lantest.Binary(tb), all...)
	p.cmd.Env = append(os.Environ(), "USER="+user)
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", user, err)
	}
	go func() { p.done <- p.cmd.Wait(); close(p.done) }()
	return p
}

// stop ends the process with SIGTERM (it says BR_EXIT), killing it after 10 s.
func (p *serveProc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop on SIGTERM", p.user)
	}
}

// stopAll stops every process at once and fails tb if one hangs.
func stopAll(tb testing.TB, ps []*serveProc) {
	tb.Helper()
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { errs[i] = p.stop() })
	}
	wg.Wait()
	for i, err := range errs {
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			tb.Errorf("%s: %v", ps[i].user, err)
		}
	}
}

// dial connects to the node's control socket as soon as it exists, polling
// every 2 ms, and returns when that happened.
func (p *serveProc) dial(ctx context.Context) (*control.Client, time.Time, error) {
	for {
		if c, err := control.Dial(p.data); err == nil {
			return c, time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return nil, time.Time{}, fmt.Errorf("%s: control socket: %w", p.user, ctx.Err())
		case err := <-p.done:
			return nil, time.Time{}, fmt.Errorf("%s exited: %v", p.user, err)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// joinTimes says when a node's control socket answered and when it first
// listed every user it should.
type joinTimes struct {
	ready, complete time.Time
}

// watchJoins follows the node's contact events until it lists every user in
// want. It asks for the contact list once subscribed, so contacts learned
// before the subscription count too.
func (p *serveProc) watchJoins(ctx context.Context, want []string) (joinTimes, error) {
	var jt joinTimes
	events, ready, err := p.dial(ctx)
	if err != nil {
		return jt, err
	}
	jt.ready = ready
	defer events.Close()
	stopWatch := context.AfterFunc(ctx, func() { events.Close() })
	defer stopWatch()
	missing := map[string]bool{}
	for _, u := range want {
		missing[u] = true
	}
	seen := func(c peer.Contact) {
		delete(missing, c.User)
		if len(missing) == 0 && jt.complete.IsZero() {
			jt.complete = time.Now()
		}
	}
	var listErr error
	subscribed := func() {
		var cs []peer.Contact
		if cs, listErr = p.contacts(); listErr != nil {
			events.Close()
			return
		}
		for _, c := range cs {
			seen(c)
		}
		if !jt.complete.IsZero() {
			events.Close() // nothing more to wait for
		}
	}
	err = events.Events(subscribed, func(kind string, data json.RawMessage) error {
		var e peer.ContactEvent
		if kind != "contact" || json.Unmarshal(data, &e) != nil {
			return nil
		}
		if seen(e.Contact); !jt.complete.IsZero() {
			return errComplete
		}
		return nil
	})
	switch {
	case !jt.complete.IsZero():
		return jt, nil
	case listErr != nil:
		return jt, listErr
	case ctx.Err() != nil:
		return jt, fmt.Errorf("%s still misses %d peers: %w", p.user, len(missing), ctx.Err())
	}
	return jt, fmt.Errorf("%s: events: %v", p.user, err)
}

var errComplete = errors.New("every peer listed")

// contacts asks the node for its contact list.
func (p *serveProc) contacts() ([]peer.Contact, error) {
	var cs []peer.Contact
	err := p.request("peers", func(data json.RawMessage) error {
		var c peer.Contact
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
		cs = append(cs, c)
		return nil
	})
	return cs, err
}

// self asks the node for its status and counters.
func (p *serveProc) self() (peer.Self, error) {
	var s peer.Self
	err := p.request("status", func(data json.RawMessage) error { return json.Unmarshal(data, &s) })
	return s, err
}

func (p *serveProc) request(op string, each func(json.RawMessage) error) error {
	c, err := control.Dial(p.data)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Do(control.Request{Op: op}, func(_ string, data json.RawMessage) error { return each(data) })
}

// udpCounter counts, with nftables in each host, the IPMsg datagrams the
// hosts put on the wire (a broadcast counts once however many hear it) and,
// per sender and destination, the unicast ones: in a start-up without chat
// those are the ANSENTRY answers, so a count above one is a repeated answer.
type udpCounter struct {
	hosts []*netns.Host
	port  string
}

// nftTable is the benchmark's own table in each host namespace.
const nftTable = "lcbench"

// newUDPCounter installs the counters; it returns nil (and logs why) when
// nft is missing or refuses, and the caller falls back to the nodes' own
// counters.
func newUDPCounter(tb testing.TB, hosts []*netns.Host, port int) *udpCounter {
	c := &udpCounter{hosts: hosts, port: strconv.Itoa(port)}
	err := c.each(func(h *netns.Host) error {
		for _, args := range [][]string{
			{"add", "table", "ip", nftTable},
			{"add", "counter", "ip", nftTable, "sent"},
			{"add", "set", "ip", nftTable, "unicast", "{ type ipv4_addr; flags dynamic; counter; }"},
			{"add", "chain", "ip", nftTable, "out", "{ type filter hook output priority 0; }"},
			{"add", "rule", "ip", nftTable, "out", "udp", "dport", c.port, "counter", "name", "sent"},
			{"add", "rule", "ip", nftTable, "out", "udp", "dport", c.port, "ip", "daddr", "!=",
				"{ " + h.Broadcast().String() + ", 255.255.255.255 }", "update", "@unicast", "{ ip daddr }"},
		} {
			if _, err := h.Run(append([]string{"nft"}, args...)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Logf("no nftables packet counter, counting from the nodes' statistics: %v", err)
		return nil
	}
	return c
}

// udpCount is what the hosts sent since the last reset.
type udpCount struct {
	sent    int // every datagram to the port
	repeats int // unicast datagrams to a destination its sender had already sent one to
}

// readAndReset returns the counts since the last call and resets them.
func (c *udpCounter) readAndReset() (udpCount, error) {
	var mu sync.Mutex
	var total udpCount
	err := c.each(func(h *netns.Host) error {
		n, err := c.read(h)
		mu.Lock()
		total.sent += n.sent
		total.repeats += n.repeats
		mu.Unlock()
		return err
	})
	return total, err
}

func (c *udpCounter) read(h *netns.Host) (udpCount, error) {
	var n udpCount
	out, err := h.Run("nft", "-j", "reset", "counter", "ip", nftTable, "sent")
	if err != nil {
		return n, err
	}
	var counter struct {
		Nftables []struct {
			Counter *struct{ Packets int } `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &counter); err != nil {
		return n, fmt.Errorf("%s: nft counter: %w", h.Name, err)
	}
	for _, o := range counter.Nftables {
		if o.Counter != nil {
			n.sent += o.Counter.Packets
		}
	}
	if out, err = h.Run("nft", "-j", "list", "set", "ip", nftTable, "unicast"); err != nil {
		return n, err
	}
	var set struct {
		Nftables []struct {
			Set *struct {
				Elem []struct {
					Elem struct{ Counter struct{ Packets int } } `json:"elem"`
				} `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &set); err != nil {
		return n, fmt.Errorf("%s: nft set: %w", h.Name, err)
	}
	for _, o := range set.Nftables {
		if o.Set == nil {
			continue
		}
		for _, e := range o.Set.Elem {
			n.repeats += max(e.Elem.Counter.Packets-1, 0)
		}
	}
	_, err = h.Run("nft", "flush", "set", "ip", nftTable, "unicast")
	return n, err
}

// each runs fn for every host, a few at a time.
func (c *udpCounter) each(fn func(*netns.Host) error) error {
	errs := make([]error, len(c.hosts))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, h := range c.hosts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = fn(h)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
