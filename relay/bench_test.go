package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/lanchat/lanchat/internal/latency"
)

// The benchmarks of the relay's message path. Each reports the relayed
// figures beside a baseline from the same run: a direct libp2p stream
// between the same two client hosts, carrying the same frames. Run them
// with
//
//	go test -run '^$' -bench 'Relay(Latency|Throughput)' -benchtime 1x ./relay
//
// BenchmarkRelayIdleClients (idle_bench_test.go) measures the relay's memory.
const (
	// latencyMsgs is how many messages an iteration of BenchmarkRelayLatency
	// times on each path, after benchWarmUp untimed ones.
	latencyMsgs  = 2000
	benchWarmUp  = 100
	benchBlock   = 250 // messages on one path before the other's turn
	benchTimeout = 10 * time.Second
	// throughputMsgs is how many messages a round of BenchmarkRelayThroughput
	// sends on each path, throughputRounds rounds an iteration, with at most
	// throughputWindow sends awaiting the relay's "stored".
	throughputMsgs   = 5000
	throughputRounds = 3
	throughputWindow = 256
	benchText        = "lanchat relay benchmark message #%06d"
	// protoBenchSink is the baseline's protocol: frames one way, read by
	// the recipient as the relay client reads deliveries.
	protoBenchSink = "/lanchat/bench-sink/1.0.0"
)

// arrival is one message reaching the recipient, relayed or direct.
type arrival struct {
	id string
	at time.Time
}

// benchPair is two members of one relay on loopback, with a direct stream
// from the first (the sender) to the second (the recipient).
type benchPair struct {
	from, to *Client
	relayed  chan arrival // the recipient's deliveries (messages, not receipts)
	direct   chan arrival // frames read from the direct stream
	w        *bufio.Writer
}

func newBenchPair(b *testing.B) *benchPair {
	b.Helper()
	// The default SendRate (500/s, bursts of 5000) would cap the
	// throughput benchmark; it is a policy, not what the relay can carry.
	s := benchRelay(b, ServerConfig{SendRate: 1e6})
	p := &benchPair{relayed: make(chan arrival, 4*throughputMsgs), direct: make(chan arrival, 4*throughputMsgs)}
	p.from = benchMember(b, s, "alice", nil)
	p.to = benchMember(b, s, "bob", p.relayed)
	p.to.host.SetStreamHandler(protoBenchSink, func(str network.Stream) {
		defer str.Close()
		r := bufio.NewReader(str)
		for {
			f, err := ReadFrame(r)
			if err != nil {
				return
			}
			p.direct <- arrival{id: f.ID, at: time.Now()}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	p.from.host.Peerstore().AddAddrs(p.to.ID(), p.to.host.Addrs(), peerstore.PermanentAddrTTL)
	str, err := p.from.host.NewStream(ctx, p.to.ID(), protoBenchSink)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { str.Close() })
	p.w = bufio.NewWriter(str)
	return p
}

// benchRelay runs a relay on loopback with cfg's limits.
func benchRelay(b *testing.B, cfg ServerConfig) *Server {
	b.Helper()
	cfg.Dir = b.TempDir()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewServer(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("relay: %v", err)
		}
	})
	return s
}

// benchMember joins s and stays connected; its messages (not receipts) go
// to got, if not nil.
func benchMember(b *testing.B, s *Server, nick string, got chan<- arrival) *Client {
	b.Helper()
	key, _, err := LoadIdentity(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewClient(ClientConfig{Key: key, Profile: Profile{Key: nick + "@pc", Nick: nick},
		Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Deliver: func(env Envelope) error {
			if got != nil && env.Kind == KindMsg {
				got <- arrival{id: env.ID, at: time.Now()}
			}
			return nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done; c.Close() })
	code, err := s.Invite(ctx, time.Hour, nick)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Join(ctx, code); err != nil {
		b.Fatalf("%s join: %v", nick, err)
	}
	for deadline := time.Now().Add(benchTimeout); !c.State().Connected; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%s: not connected: %+v", nick, c.State())
		}
	}
	return c
}

// msgID is message i's send ID; warm-up messages have negative i.
func msgID(i int) string { return "m" + strconv.Itoa(i) }

// sendRelayed sends message i through the relay and returns once the relay
// stored it.
func (p *benchPair) sendRelayed(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	return p.from.Send(ctx, msgID(i), p.to.ID().String(), "", MessageBody{Text: fmt.Sprintf(benchText, i)})
}

// writeDirect writes message i, framed as the client frames a send, to the
// direct stream; flush sends it.
func (p *benchPair) writeDirect(i int, flush bool) error {
	body := fmt.Appendf(nil, `{"text":%q}`, fmt.Sprintf(benchText, i))
	if err := WriteFrame(p.w, Frame{T: "send", ID: msgID(i), To: p.to.ID().String(), Body: body}); err != nil {
		return err
	}
	if flush {
		return p.w.Flush()
	}
	return nil
}

// await waits for message i on ch and returns when it arrived. Receivers
// see each path's messages in order, so anything before i is skipped.
func await(ch <-chan arrival, i int) (time.Time, error) {
	want := msgID(i)
	timeout := time.After(benchTimeout)
	for {
		select {
		case a := <-ch:
			if a.id == want || strings.HasSuffix(a.id, "/"+want) {
				return a.at, nil
			}
		case <-timeout:
			return time.Time{}, fmt.Errorf("message %s did not arrive", want)
		}
	}
}

// relayedOnce and directOnce send message i alone and return the time
// from the send to its arrival.
func (p *benchPair) relayedOnce(i int) (time.Duration, error) {
	start := time.Now()
	if err := p.sendRelayed(i); err != nil {
		return 0, err
	}
	at, err := await(p.relayed, i)
	return at.Sub(start), err
}

func (p *benchPair) directOnce(i int) (time.Duration, error) {
	start := time.Now()
	if err := p.writeDirect(i, true); err != nil {
		return 0, err
	}
	at, err := await(p.direct, i)
	return at.Sub(start), err
}

// BenchmarkRelayLatency sends one message at a time from one member to
// another and times it from Client.Send to the recipient's Deliver callback
// (the relay stores it durably in between and the recipient acknowledges
// it), beside the same frame written to a direct libp2p stream between the
// same two client hosts and timed to the recipient's read. The two paths
// alternate in blocks of benchBlock messages.
func BenchmarkRelayLatency(b *testing.B) {
	p := newBenchPair(b)
	for i := range benchWarmUp {
		if _, err := p.relayedOnce(-1 - i); err != nil {
			b.Fatal(err)
		}
		if _, err := p.directOnce(-1 - i); err != nil {
			b.Fatal(err)
		}
	}
	var relayed, direct []time.Duration
	n := 0
	for b.Loop() {
		for lo := 0; lo < latencyMsgs; lo += benchBlock {
			for _, path := range []struct {
				once func(int) (time.Duration, error)
				into *[]time.Duration
			}{{p.relayedOnce, &relayed}, {p.directOnce, &direct}} {
				for i := n + lo; i < n+min(lo+benchBlock, latencyMsgs); i++ {
					d, err := path.once(i)
					if err != nil {
						b.Fatal(err)
					}
					*path.into = append(*path.into, d)
				}
			}
		}
		n += latencyMsgs
	}
	b.ReportMetric(0, "ns/op") // an iteration is 2×latencyMsgs messages; see the metrics
	rp50, rp99 := latency.Quantile(relayed, .50), latency.Quantile(relayed, .99)
	dp50, dp99 := latency.Quantile(direct, .50), latency.Quantile(direct, .99)
	b.ReportMetric(latency.Micros(rp50), "relayed-p50-µs")
	b.ReportMetric(latency.Micros(rp99), "relayed-p99-µs")
	b.ReportMetric(latency.Micros(dp50), "direct-p50-µs")
	b.ReportMetric(latency.Micros(dp99), "direct-p99-µs")
	b.Logf("relayed p50 %v vs direct p50 %v; relayed p99 %v vs direct p99 %v (%d messages each)",
		rp50, dp50, rp99, dp99, len(relayed))
}

// BenchmarkRelayThroughput sends throughputMsgs messages as fast as the
// sender can, with up to throughputWindow sends awaiting "stored", and
// times them from the first send to the recipient's last delivery; the
// baseline writes as many frames back to back to the direct stream and
// times them to the recipient's last read. Rounds alternate between the
// paths.
func BenchmarkRelayThroughput(b *testing.B) {
	p := newBenchPair(b)
	if _, err := p.relayedBurst(-1 - throughputMsgs); err != nil { // warm-up
		b.Fatal(err)
	}
	if _, err := p.directBurst(-1 - throughputMsgs); err != nil {
		b.Fatal(err)
	}
	var relayed, direct time.Duration
	n, msgs := 0, 0
	for b.Loop() {
		for range throughputRounds {
			d, err := p.relayedBurst(n)
			if err != nil {
				b.Fatal(err)
			}
			relayed += d
			if d, err = p.directBurst(n); err != nil {
				b.Fatal(err)
			}
			direct += d
			n += throughputMsgs
			msgs += throughputMsgs
		}
	}
	b.ReportMetric(0, "ns/op")
	rr, dr := float64(msgs)/relayed.Seconds(), float64(msgs)/direct.Seconds()
	b.ReportMetric(rr, "relayed-msg/s")
	b.ReportMetric(dr, "direct-msg/s")
	b.Logf("relayed %.0f msg/s vs direct %.0f msg/s (%d messages each, window %d)", rr, dr, msgs, throughputWindow)
}

// relayedBurst sends messages first..first+throughputMsgs-1 through the
// relay from throughputWindow goroutines and returns the time until the
// last arrived.
func (p *benchPair) relayedBurst(first int) (time.Duration, error) {
	start := time.Now()
	next := make(chan int)
	var failed sync.Once
	var sendErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range throughputWindow {
		wg.Go(func() {
			for i := range next {
				if err := p.sendRelayed(i); err != nil {
					failed.Do(func() { sendErr = err; close(stop) })
					return
				}
			}
		})
	}
	go func() {
		defer close(next)
		for i := first; i < first+throughputMsgs; i++ {
			select {
			case next <- i:
			case <-stop:
				return
			}
		}
	}()
	last, err := collect(p.relayed, throughputMsgs)
	wg.Wait()
	return last.Sub(start), errors.Join(sendErr, err)
}

// directBurst writes the same number of frames to the direct stream.
func (p *benchPair) directBurst(first int) (time.Duration, error) {
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for i := first; i < first+throughputMsgs; i++ {
			if err := p.writeDirect(i, false); err != nil {
				errc <- err
				return
			}
		}
		errc <- p.w.Flush()
	}()
	last, err := collect(p.direct, throughputMsgs)
	return last.Sub(start), errors.Join(err, <-errc)
}

// collect waits for n arrivals and returns the time of the last.
func collect(ch <-chan arrival, n int) (time.Time, error) {
	var last time.Time
	for range n {
		select {
		case a := <-ch:
			last = a.at
		case <-time.After(benchTimeout):
			return last, fmt.Errorf("only some of %d messages arrived", n)
		}
	}
	return last, nil
}
