//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/latency"
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
	// roundTripTarget is issue #2's target for BenchmarkAckedRoundTrip:
	// lanchat's rate at least this share of the raw UDP echo's.
	roundTripTarget = 0.5
)

// BenchmarkAckedRoundTrip sends messages one after another from a node in
// one namespace to a node in another, each waiting for its RECVMSG, and
// compares with a raw UDP echo between the same two namespaces: a datagram
// of the same size as the SENDMSG, answered with one the size of the
// RECVMSG. As between two hosts, the receivers are processes of their own
// (`lanchat serve`, and an echo responder), so that they share neither the
// sender's Go runtime nor each other's; the senders are the benchmark's.
func BenchmarkAckedRoundTrip(b *testing.B) {
	s := newSendBench(b, "10.203.1.0/24", 1)
	var lanchat, raw series
	for b.Loop() {
		interleave(b, roundTrips, &lanchat, s.send, &raw, s.echo.roundTrip)
	}
	report(b, "msgs/s", lanchat, raw, roundTripTarget)
}

// BenchmarkMultiPeerSend sends each message to ten peers at once and waits
// until all ten acknowledged it; the baseline sends one datagram to ten raw
// UDP echo responders in the same namespaces and waits for the ten answers.
// Each receiver is a process of its own, as in BenchmarkAckedRoundTrip.
func BenchmarkMultiPeerSend(b *testing.B) {
	s := newSendBench(b, "10.203.2.0/24", 10)
	var lanchat, raw series
	for b.Loop() {
		interleave(b, multiRounds, &lanchat, s.send, &raw, s.echo.roundTrip)
	}
	report(b, "sends/s", lanchat, raw, 0)
}

// sendBench is a sending node in the benchmark's process, on the first host
// of a segment, and on each other host a `lanchat serve` to send to and an
// echo responder for the baseline.
type sendBench struct {
	sender *benchNode
	to     []string // the receivers' contact keys at the sender
	echo   *echoGroup
}

// newSendBench starts everything and waits until the sender lists every
// receiver and every receiver lists the sender. Everything is stopped at
// cleanup.
//
// The nodes announce only by unicast (NoBroadcast, with each other's
// addresses as Extra): discovery lists interfaces from its Run goroutine,
// which for the in-process sender runs in the benchmark's own namespace,
// not the host's, so broadcast announcements would go to the machine's own
// broadcast addresses, and the node would not recognise its own
// 255.255.255.255 echo.
func newSendBench(tb testing.TB, prefix string, receivers int) *sendBench {
	tb.Helper()
	netns.Require(tb)
	hosts := segmentHosts(tb, prefix, receivers+1)
	from, to := hosts[0], hosts[1:]
	var extra, users []string
	procs := make([]*serveProc, len(to))
	for i, h := range to {
		extra = append(extra, h.Addr.String())
		users = append(users, fmt.Sprintf("bench%02d", i+1))
		// --log info, the default, overrides startServe's debug: measure the node as users run it.
		procs[i] = startServe(tb, h, users[i], "--no-broadcast", "--broadcast", from.Addr.String(), "--log", "info")
	}
	tb.Cleanup(func() { stopAll(tb, procs) })
	s := &sendBench{sender: startNode(tb, from, "bench00", extra)}
	s.echo = newEchoGroup(tb, from, to, users)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { _, errs[i] = p.watchJoins(ctx, []string{s.sender.user}) })
	}
	for _, u := range users {
		s.to = append(s.to, s.sender.waitFor(tb, u))
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	return s
}

// send sends message i to every receiver and checks each was delivered.
func (s *sendBench) send(i int) error { return s.sender.send(s.to, i) }

// series is the timing of one kind of operation.
type series struct {
	total time.Duration
	each  []time.Duration
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

// report reports lanchat's rate and latency beside the raw baseline's, and
// their ratio: lanchat's rate over the baseline's. With a target (> 0), the
// log says whether the ratio meets it.
func report(b *testing.B, rate string, lanchat, raw series, target float64) {
	b.ReportMetric(0, "ns/op") // an iteration is two measurements; each has its metrics
	for _, s := range []struct {
		name string
		s    series
	}{{"lanchat", lanchat}, {"udp-echo", raw}} {
		b.ReportMetric(s.s.rate(), s.name+"-"+rate)
		b.ReportMetric(latency.Micros(latency.Quantile(s.s.each, .50)), s.name+"-p50-µs")
		b.ReportMetric(latency.Micros(latency.Quantile(s.s.each, .99)), s.name+"-p99-µs")
	}
	ratio := lanchat.rate() / raw.rate()
	b.ReportMetric(ratio, "ratio")
	verdict := ""
	switch {
	case target > 0 && ratio >= target:
		verdict = fmt.Sprintf(" (target ≥ %.2f: met)", target)
	case target > 0:
		verdict = fmt.Sprintf(" (target ≥ %.2f: NOT met)", target)
	}
	b.Logf("lanchat %.0f %s (p50 %v, p99 %v) vs raw UDP echo %.0f %s (p50 %v, p99 %v): ratio %.2f%s",
		lanchat.rate(), rate, latency.Quantile(lanchat.each, .50), latency.Quantile(lanchat.each, .99),
		raw.rate(), rate, latency.Quantile(raw.each, .50), latency.Quantile(raw.each, .99), ratio, verdict)
}

// benchNode is an in-process node whose sockets live in a host's namespace.
type benchNode struct {
	*peer.Node
	user string
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

// waitFor polls until n lists user and returns the contact's key, or fails
// after 10 s.
func (n *benchNode) waitFor(tb testing.TB, user string) string {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, c := range n.Contacts() {
			if c.User == user {
				return c.Key
			}
		}
	}
	tb.Fatalf("%s does not list %s: %+v", n.user, user, n.Contacts())
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

// echoGroup is the baseline for sending: a client socket in the benchmark's
// process in one namespace, and an echo responder process in each of the
// others.
type echoGroup struct {
	client  *net.UDPConn
	servers []netip.AddrPort
	user    string // the sender's header name, so datagrams are as long as lanchat's
	host    string
	buf     []byte
}

// newEchoGroup starts a responder on each host in to; users are the names
// its answers carry, those of the lanchat receivers on the same hosts.
func newEchoGroup(tb testing.TB, from *netns.Host, to []*netns.Host, users []string) *echoGroup {
	tb.Helper()
	hostname, _ := os.Hostname()
	g := &echoGroup{user: "bench00", host: hostname, buf: make([]byte, 2048)}
	var err error
	if g.client, err = listenUDP(from, 0); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.client.Close() })
	for i, h := range to {
		port, err := startEchoResponder(tb, h, users[i])
		if err != nil {
			tb.Fatal(err)
		}
		g.servers = append(g.servers, addrPort(h, port))
	}
	return g
}

// echoResponderEnv, set to a user name, makes the benchmark binary an echo
// responder (see TestMain) instead of running benchmarks.
const echoResponderEnv = "LANCHAT_BENCH_ECHO_USER"

// startEchoResponder runs the benchmark binary as an echo responder on h
// and returns its port. The responder ends when its standard input closes:
// at cleanup, or when the benchmark's process ends in any way.
func startEchoResponder(tb testing.TB, h *netns.Host, user string) (uint16, error) {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := h.Command(context.Background(), self)
	cmd.Env = append(os.Environ(), echoResponderEnv+"="+user)
	var log bytes.Buffer // written by the process's output copier; read after it exits
	cmd.Stderr = &log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("echo responder in %s: %w", h.Name, err)
	}
	stop := func() error {
		stdin.Close()
		kill := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		defer kill.Stop()
		return cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	port, perr := strconv.ParseUint(strings.TrimSpace(line), 10, 16)
	if err != nil || perr != nil {
		werr := stop()
		return 0, fmt.Errorf("echo responder in %s said %q (%v, exit %v): %s", h.Name, line, errors.Join(err, perr), werr, log.Bytes())
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("echo responder in %s: %v: %s", h.Name, err, log.Bytes())
		}
	})
	return uint16(port), nil
}

// runEchoResponder is the responder process: it listens on a free UDP port
// of its namespace, prints the port, and answers every datagram until
// stdin closes.
func runEchoResponder(user string) error {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return err
	}
	fmt.Println(localPort(conn))
	go func() { io.Copy(io.Discard, os.Stdin); conn.Close() }()
	hostname, _ := os.Hostname()
	serveEcho(conn, user, hostname)
	return nil
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
// responder and waits for every answer.
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
