//go:build linux

package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
)

const (
	ipmsgPort = 2425
	// rawPort is the raw baseline's, so its sockets never hold lanchat's port.
	rawPort = 2426
	// entryTargets is where a node's BR_ENTRY goes on a one-segment LAN: the
	// segment's directed broadcast and 255.255.255.255 (discovery targets).
	entryTargets = 2
	// answerSettle is how long after the last node started every ANSENTRY
	// has been sent: answerDelay waits at most 5 ms + 1024 ms on a small
	// LAN; the rest is slack for a busy machine.
	answerSettle = 1500 * time.Millisecond
	// convergeTimeout fails an iteration that never converges.
	convergeTimeout = 30 * time.Second
)

// BenchmarkDiscoveryConvergence starts 30 `lanchat serve` processes at once
// on one segment and measures the time until every node lists the 29 others
// and the presence packets this took. Baselines: the ideal packet count of
// the protocol, N entries × targets + N×(N−1) answers, and raw UDP: each of
// the same 30 namespaces broadcasts one datagram, timed until every host has
// heard all 29.
func BenchmarkDiscoveryConvergence(b *testing.B) {
	const nodes = 30
	netns.Require(b)
	lantest.Binary(b) // build before anything is timed
	hosts := segmentHosts(b, "10.203.0.0/24", nodes)
	counter := newUDPCounter(b, hosts, ipmsgPort)
	raw := newRawBroadcast(b, hosts, rawPort)
	users := make([]string, nodes)
	for i := range users {
		users[i] = fmt.Sprintf("bench%02d", i)
	}
	var sum convergence
	for b.Loop() {
		r := converge(b, hosts, users, counter)
		rawTime, err := raw.run()
		if err != nil {
			b.Fatal(err)
		}
		r.raw = rawTime
		b.Logf("%d nodes: all started after %.2fs, all listed all after %.2fs (at most %.2fs after a node's own start); "+
			"%d packets (ideal %d): %d entries, %.1f answers per node (at most %d), %d repeated; raw UDP broadcast: %.2f ms",
			nodes, r.start.Seconds(), r.converge.Seconds(), r.node.Seconds(), r.packets, idealPackets(nodes),
			r.entries, float64(r.answers)/nodes, r.maxAnswers, r.repeats, float64(r.raw)/float64(time.Millisecond))
		sum.add(r)
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op") // an iteration is several measurements; each has its metric
	b.ReportMetric(sum.converge.Seconds()/n, "converge-s")
	b.ReportMetric(sum.start.Seconds()/n, "start-s")
	b.ReportMetric(sum.node.Seconds()/n, "node-converge-s")
	b.ReportMetric(float64(sum.packets)/n, "packets")
	b.ReportMetric(float64(idealPackets(nodes)), "ideal-packets")
	b.ReportMetric(float64(sum.answers)/n/nodes, "answers-per-node")
	b.ReportMetric(float64(sum.maxAnswers), "max-answers-per-node")
	if counter != nil {
		b.ReportMetric(float64(sum.repeats)/n, "repeated-answers")
	}
	b.ReportMetric(sum.raw.Seconds()/n, "raw-converge-s")
}

// idealPackets is one BR_ENTRY per target from every node and one ANSENTRY
// from every node to every other.
func idealPackets(n int) int { return n*entryTargets + n*(n-1) }

// convergence is what one start of every node measured.
type convergence struct {
	start    time.Duration // until the last node's control socket answered
	converge time.Duration // until the last node listed all others
	node     time.Duration // the longest from a node's start until it listed all others
	packets  int           // IPMsg datagrams sent until answerSettle after the last start
	entries  int           // BR_ENTRY (and probe) datagrams by the nodes' own count
	answers  int           // ANSENTRY by the nodes' own count
	// maxAnswers is the most ANSENTRY one node sent: N−1 at most without a storm.
	maxAnswers int
	// repeats counts unicast datagrams (answers) a node sent again to the
	// same peer, from the wire; -1 without a packet counter.
	repeats int
	raw     time.Duration // the raw broadcast baseline
}

func (c *convergence) add(o convergence) {
	c.start += o.start
	c.converge += o.converge
	c.node += o.node
	c.maxAnswers = max(c.maxAnswers, o.maxAnswers)
	c.repeats += o.repeats
	c.packets += o.packets
	c.entries += o.entries
	c.answers += o.answers
	c.raw += o.raw
}

// segmentHosts makes n hosts on one fresh segment.
func segmentHosts(tb testing.TB, prefix string, n int) []*netns.Host {
	tb.Helper()
	seg := netns.New(tb).Segment(netip.MustParsePrefix(prefix))
	hosts := make([]*netns.Host, n)
	for i := range hosts {
		hosts[i] = seg.AddHost(fmt.Sprintf("h%02d", i))
	}
	return hosts
}

// converge starts one node per host, waits until all list each other and
// every answer is out, reads the counters and stops the nodes.
func converge(b *testing.B, hosts []*netns.Host, users []string, counter *udpCounter) convergence {
	b.Helper()
	if counter != nil {
		if _, err := counter.readAndReset(); err != nil { // forget the last round's BR_EXITs
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	procs := make([]*serveProc, len(hosts))
	for i, h := range hosts {
		procs[i] = startServe(b, h, users[i])
	}
	times, err := watchAll(procs, users)
	if err != nil {
		stopAll(b, procs)
		b.Fatalf("%v\nlog of %s:\n%s", err, procs[0].user, procs[0].log.String())
	}
	var r convergence
	lastReady := t0
	for _, jt := range times {
		lastReady = latest(lastReady, jt.ready)
		r.start = max(r.start, jt.ready.Sub(t0))
		r.converge = max(r.converge, jt.complete.Sub(t0))
		r.node = max(r.node, jt.complete.Sub(jt.ready))
	}
	time.Sleep(time.Until(lastReady.Add(answerSettle)))
	for _, p := range procs {
		s, err := p.self()
		if err != nil {
			b.Fatal(err)
		}
		r.entries += s.Discovery.Entries + s.Discovery.Probes
		r.answers += s.Discovery.Answers
		r.maxAnswers = max(r.maxAnswers, s.Discovery.Answers)
	}
	r.packets, r.repeats = r.entries+r.answers, -1
	if counter != nil {
		c, err := counter.readAndReset()
		if err != nil {
			b.Fatal(err)
		}
		r.packets, r.repeats = c.sent, c.repeats
	}
	stopAll(b, procs)
	return r
}

// watchAll follows every node until it lists all the other users.
func watchAll(procs []*serveProc, users []string) ([]joinTimes, error) {
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	times := make([]joinTimes, len(procs))
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		others := slices.Delete(slices.Clone(users), i, i+1)
		wg.Go(func() { times[i], errs[i] = p.watchJoins(ctx, others) })
	}
	wg.Wait()
	return times, errors.Join(errs...)
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// rawBroadcast is the baseline for discovery: one plain UDP socket per host.
type rawBroadcast struct {
	hosts []*netns.Host
	conns []*net.UDPConn
	to    netip.AddrPort
	round uint32
}

func newRawBroadcast(tb testing.TB, hosts []*netns.Host, port int) *rawBroadcast {
	tb.Helper()
	r := &rawBroadcast{hosts: hosts, to: netip.AddrPortFrom(hosts[0].Broadcast(), uint16(port))}
	for _, h := range hosts {
		c, err := listenUDP(h, port)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() }) // before the namespaces go
		r.conns = append(r.conns, c)
	}
	return r
}

// run makes every host broadcast one datagram and returns the time until
// every host has heard all the others. Nobody answers.
func (r *rawBroadcast) run() (time.Duration, error) {
	r.round++
	msg := binary.BigEndian.AppendUint32(nil, r.round)
	heard := make([]time.Time, len(r.conns))
	errs := make([]error, len(r.conns))
	var wg sync.WaitGroup
	for i, c := range r.conns {
		wg.Go(func() { heard[i], errs[i] = r.hearAll(c, r.hosts[i].Addr, msg) })
	}
	start := time.Now()
	for i, c := range r.conns {
		if _, err := c.WriteToUDPAddrPort(msg, r.to); err != nil {
			return 0, fmt.Errorf("raw broadcast from %s: %w", r.hosts[i].Name, err)
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	var d time.Duration
	for _, t := range heard {
		d = max(d, t.Sub(start))
	}
	return d, nil
}

// hearAll reads until msg has come from every host but self.
func (r *rawBroadcast) hearAll(c *net.UDPConn, self netip.Addr, msg []byte) (time.Time, error) {
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return time.Time{}, err
	}
	from := map[netip.Addr]bool{}
	buf := make([]byte, 64)
	for len(from) < len(r.conns)-1 {
		n, ap, err := c.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return time.Time{}, fmt.Errorf("raw broadcast: %v heard %d of %d hosts", self, len(from), len(r.conns)-1)
		}
		if err != nil {
			return time.Time{}, err
		}
		if a := ap.Addr().Unmap(); a != self && string(buf[:n]) == string(msg) {
			from[a] = true
		}
	}
	return time.Now(), nil
}
