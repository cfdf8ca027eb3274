package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/ipmsg"
	"github.com/lanchat/lanchat/peer"
)

const (
	// roundTrips is how many acked messages an iteration sends, after warmUp
	// untimed ones; enough for a stable p99 with -benchtime 1x.
	roundTrips = 5000
	warmUp     = 100
	// blockLen is how many operations of one kind run before the other kind's turn.
	blockLen = 250
	// multiRounds is how many messages BenchmarkMultiPeerSend sends to all peers.
	multiRounds = 1000
	// benchText is every message's text; numbered so no two are alike.
	benchText = "lanchat benchmark message #%06d"
	// replyTimeout fails a baseline datagram that never came back.
	replyTimeout = 2 * time.Second
)

// BenchmarkAckedRoundTrip sends messages one after another from a node in
// one namespace to a node in another, each waiting for its RECVMSG, and
// compares with a raw UDP echo between the same two namespaces: a datagram
// of the same size as the SENDMSG, answered with one the size of the
// RECVMSG.
func BenchmarkAckedRoundTrip(b *testing.B) {
	netns.Require(b)
	hosts := segmentHosts(b, "10.203.1.0/24", 2)
	nodes := startNodes(b, hosts)
	echo := newEchoGroup(b, hosts[0], hosts[1:])
	to := []string{nodes[0].keyOf(nodes[1])}
	var lanchat, raw series
	for b.Loop() {
		interleave(b, roundTrips, &lanchat, func(i int) error { return nodes[0].send(to, i) }, &raw, echo.roundTrip)
	}
	report(b, "msgs/s", lanchat, raw)
}

// BenchmarkMultiPeerSend sends each message to ten peers at once and waits
// until all ten acknowledged it; the baseline sends one datagram to ten raw
// UDP echo servers in the same namespaces and waits for the ten answers.
func BenchmarkMultiPeerSend(b *testing.B) {
	const peers = 10
	netns.Require(b)
	hosts := segmentHosts(b, "10.203.2.0/24", peers+1)
	nodes := startNodes(b, hosts)
	echo := newEchoGroup(b, hosts[0], hosts[1:])
	var to []string
	for _, n := range nodes[1:] {
		to = append(to, nodes[0].keyOf(n))
	}
	var lanchat, raw series
	for b.Loop() {
		interleave(b, multiRounds, &lanchat, func(i int) error { return nodes[0].send(to, i) }, &raw, echo.roundTrip)
	}
	report(b, "sends/s", lanchat, raw)
}

// series is the timing of one kind of operation.
type series struct {
	total time.Duration
	each  latencies
}

// rate is operations per second.
func (s series) rate() float64 { return perSecond(len(s.each), s.total) }

// interleave runs n operations of lanchat and n of the raw baseline in
// alternating blocks, so that both see the same machine (other programs come
// and go, and the Go runtime warms up), after warmUp untimed operations of
// each. Operation i gets a distinct i; warm-up ones are negative. It fails
// tb at the first error.
func interleave(tb testing.TB, n int, lanchat *series, lanchatOp func(i int) error, raw *series, rawOp func(i int) error) {
	tb.Helper()
	for i := range warmUp {
		if err := errors.Join(lanchatOp(-1-i), rawOp(-1-i)); err != nil {
			tb.Fatal(err)
		}
	}
	for lo := 0; lo < n; lo += blockLen {
		hi := min(lo+blockLen, n)
		if err := errors.Join(raw.time(lo, hi, rawOp), lanchat.time(lo, hi, lanchatOp)); err != nil {
			tb.Fatal(err)
		}
	}
}

// time runs op for lo..hi-1 and records each call.
func (s *series) time(lo, hi int, op func(i int) error) error {
	start := time.Now()
	for i := lo; i < hi; i++ {
		t := time.Now()
		if err := op(i); err != nil {
			return err
		}
		s.each = append(s.each, time.Since(t))
	}
	s.total += time.Since(start)
	return nil
}

// report reports lanchat's rate and latency beside the raw baseline's.
func report(b *testing.B, rate string, lanchat, raw series) {
	b.ReportMetric(0, "ns/op") // an iteration is two measurements; each has its metrics
	for _, s := range []struct {
		name string
		s    series
	}{{"lanchat", lanchat}, {"udp-echo", raw}} {
		b.ReportMetric(s.s.rate(), s.name+"-"+rate)
		b.ReportMetric(micros(s.s.each.quantile(.50)), s.name+"-p50-µs")
		b.ReportMetric(micros(s.s.each.quantile(.99)), s.name+"-p99-µs")
	}
	ratio := lanchat.rate() / raw.rate()
	b.ReportMetric(ratio, "ratio")
	b.Logf("lanchat %.0f %s (p50 %v, p99 %v) vs raw UDP echo %.0f %s (p50 %v, p99 %v): ratio %.2f",
		lanchat.rate(), rate, lanchat.each.quantile(.50), lanchat.each.quantile(.99),
		raw.rate(), rate, raw.each.quantile(.50), raw.each.quantile(.99), ratio)
}

// benchNode is an in-process node whose sockets live in a host's namespace.
type benchNode struct {
	*peer.Node
	user string
}

// startNodes runs one node per host, waits until the first lists every
// other and every other lists the first, and stops them at cleanup.
//
// The nodes announce only by unicast (NoBroadcast, with the others'
// addresses as Extra): discovery lists interfaces from its Run goroutine,
// which runs in the benchmark's own namespace, not the host's, so broadcast
// announcements would go to the machine's own broadcast addresses, and the
// node would not recognise its own 255.255.255.255 echo.
func startNodes(tb testing.TB, hosts []*netns.Host) []*benchNode {
	tb.Helper()
	nodes := make([]*benchNode, len(hosts))
	for i, h := range hosts {
		var extra []string
		for j, o := range hosts {
			if j != i && (i == 0 || j == 0) {
				extra = append(extra, o.Addr.String())
			}
		}
		nodes[i] = startNode(tb, h, fmt.Sprintf("bench%02d", i), extra)
	}
	for _, n := range nodes[1:] {
		n.waitFor(tb, nodes[0])
		nodes[0].waitFor(tb, n)
	}
	return nodes
}

func startNode(tb testing.TB, h *netns.Host, user string, extra []string) *benchNode {
	tb.Helper()
	cfg := peer.Config{DataDir: tb.TempDir(), User: user, Nick: user, NoBroadcast: true, Extra: extra}
	var node *peer.Node
	if err := h.Do(func() (err error) { node, err = peer.New(cfg); return err }); err != nil {
		tb.Fatalf("node in %s: %v", h.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	tb.Cleanup(func() { // registered after the namespaces, so it runs before they go
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("%s: Run: %v", user, err)
			}
		case <-time.After(10 * time.Second):
			tb.Errorf("%s: Run did not return", user)
		}
	})
	return &benchNode{Node: node, user: user}
}

// waitFor polls until n lists o, or fails after 10 s.
func (n *benchNode) waitFor(tb testing.TB, o *benchNode) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if n.keyOf(o) != "" {
			return
		}
	}
	tb.Fatalf("%s does not list %s: %+v", n.user, o.user, n.Contacts())
}

// keyOf is o's contact key as n knows it, or "".
func (n *benchNode) keyOf(o *benchNode) string {
	for _, c := range n.Contacts() {
		if c.User == o.user {
			return c.Key
		}
	}
	return ""
}

// send sends message i to every contact in to and checks each was delivered.
func (n *benchNode) send(to []string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := n.Send(ctx, to, fmt.Sprintf(benchText, i), peer.SendOptions{})
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Status != peer.Delivered {
			return fmt.Errorf("message %d to %s: %s %s", i, m.Peer, m.Status, m.Error)
		}
	}
	if len(msgs) != len(to) {
		return fmt.Errorf("message %d: %d results for %d peers", i, len(msgs), len(to))
	}
	return nil
}

// echoGroup is the baseline for sending: a client socket in one namespace
// and an echo server in each of the others.
type echoGroup struct {
	client  *net.UDPConn
	servers []netip.AddrPort
	user    string // the sender's header name, so datagrams are as long as lanchat's
	host    string
	buf     []byte
}

func newEchoGroup(tb testing.TB, from *netns.Host, to []*netns.Host) *echoGroup {
	tb.Helper()
	hostname, _ := os.Hostname()
	g := &echoGroup{user: "bench00", host: hostname, buf: make([]byte, 2048)}
	var err error
	if g.client, err = listenUDP(from, 0); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.client.Close() })
	for _, h := range to {
		srv, err := listenUDP(h, 0)
		if err != nil {
			tb.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); serveEcho(srv, g.user, g.host) }()
		tb.Cleanup(func() { srv.Close(); <-done })
		g.servers = append(g.servers, addrPort(h, localPort(srv)))
	}
	return g
}

// serveEcho answers every datagram with one shaped like a RECVMSG for it,
// until conn is closed.
func serveEcho(conn *net.UDPConn, user, host string) {
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p, err := ipmsg.Parse(buf[:n])
		if err != nil {
			continue
		}
		ack := ipmsg.Packet{Version: []byte(ipmsg.Version), No: p.No + 1, User: []byte(user), Host: []byte(host),
			Command: ipmsg.RecvMsg, Extra: append(append([]byte(nil), p.NoRaw...), 0)}
		conn.WriteToUDPAddrPort(ack.Append(nil), from)
	}
}

// roundTrip sends message i, shaped like lanchat's SENDMSG, to every echo
// server and waits for every answer.
func (g *echoGroup) roundTrip(i int) error {
	pkt := ipmsg.Packet{Version: []byte(ipmsg.Version), No: uint64(time.Now().Unix()) + uint64(i+warmUp),
		User: []byte(g.user), Host: []byte(g.host),
		Command: ipmsg.SendMsg | ipmsg.SendCheckOpt | ipmsg.UTF8Opt | ipmsg.CapUTF8Opt,
		Extra:   append(fmt.Appendf(nil, benchText, i), 0)}
	msg := pkt.Append(nil)
	for _, s := range g.servers {
		if _, err := g.client.WriteToUDPAddrPort(msg, s); err != nil {
			return err
		}
	}
	if err := g.client.SetReadDeadline(time.Now().Add(replyTimeout)); err != nil {
		return err
	}
	want := slices.Clone(g.servers)
	for len(want) > 0 {
		_, from, err := g.client.ReadFromUDPAddrPort(g.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("udp echo %d: no answer from %v", i, want)
		}
		if err != nil {
			return err
		}
		if k := slices.Index(want, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())); k >= 0 {
			want = slices.Delete(want, k, k+1)
		}
	}
	return nil
}
