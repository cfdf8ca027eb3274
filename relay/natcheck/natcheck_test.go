package natcheck

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/leakcheck"
	"github.com/pion/stun/v3"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// listenLoopback opens n UDP sockets on 127.0.0.1 and closes them at cleanup.
func listenLoopback(t testing.TB, n int) []net.PacketConn {
	t.Helper()
	conns := make([]net.PacketConn, n)
	for i := range conns {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

// serve runs Serve on conns until the test ends, then checks it returned nil.
func serve(t testing.TB, conns ...net.PacketConn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, testLogger(t), conns...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func addrsOf(conns []net.PacketConn) []string {
	s := make([]string, len(conns))
	for i, c := range conns {
		s[i] = c.LocalAddr().String()
	}
	return s
}

func addrPortOf(a net.Addr) netip.AddrPort { return a.(*net.UDPAddr).AddrPort() }

func TestProbeLoopback(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("probe", func(t *testing.T) {
		conns := listenLoopback(t, 2)
		serve(t, conns...)
		res, err := Probe(t.Context(), addrsOf(conns))
		if err != nil {
			t.Fatal(err)
		}
		if res.Mapping != None || res.Public != res.Local || res.Public.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("Probe = %+v, want None with Public == Local on 127.0.0.1", res)
		}
		if !strings.Contains(res.String(), "no NAT") {
			t.Fatalf("String() = %q", res.String())
		}
	})
	leakcheck.Goroutines(t, before)
}

func TestServeAnswers(t *testing.T) {
	t.Parallel()
	conns := listenLoopback(t, 2)
	serve(t, conns...)
	client := listenLoopback(t, 1)[0]

	// Junk, a response and a non-Binding request first: all ignored, and the
	// server keeps going.
	junk := [][]byte{
		{},
		[]byte("hello"),
		stun.MustBuild(stun.TransactionID, stun.BindingSuccess).Raw,
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw,
		stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw[:19],
	}
	for _, p := range junk {
		if _, err := client.WriteTo(p, conns[0].LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if _, err := client.WriteTo(req.Raw, conns[0].LocalAddr()); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := client.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if from.String() != conns[0].LocalAddr().String() {
		t.Fatalf("answer from %v, want %v", from, conns[0].LocalAddr())
	}
	var resp stun.Message
	if err := stun.Decode(buf[:n], &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Type != stun.BindingSuccess || resp.TransactionID != req.TransactionID {
		t.Fatalf("answer %v, want a Binding success for our transaction", &resp)
	}
	if err := stun.Fingerprint.Check(&resp); err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	var (
		mapped stun.XORMappedAddress
		origin stun.ResponseOrigin
		other  stun.OtherAddress
	)
	if err := resp.Parse(&mapped, &origin, &other); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  string
		want net.Addr
	}{
		{"XOR-MAPPED-ADDRESS", mapped.String(), client.LocalAddr()},
		{"RESPONSE-ORIGIN", origin.String(), conns[0].LocalAddr()},
		{"OTHER-ADDRESS", other.String(), conns[1].LocalAddr()},
	} {
		if c.got != c.want.String() {
			t.Errorf("%s = %s, want %v", c.name, c.got, c.want)
		}
	}
}

// lossy drops the first drop datagrams it reads.
type lossy struct {
	net.PacketConn
	drop atomic.Int32
}

func (l *lossy) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, from, err := l.PacketConn.ReadFrom(p)
		if err != nil || l.drop.Add(-1) < 0 {
			return n, from, err
		}
	}
}

func TestProbeRetransmits(t *testing.T) {
	t.Parallel()
	conns := listenLoopback(t, 2)
	l := &lossy{PacketConn: conns[1]}
	l.drop.Store(2)
	serve(t, conns[0], l)
	start := time.Now()
	res, err := Probe(t.Context(), addrsOf(conns))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mapping != None {
		t.Fatalf("Probe = %+v, want None", res)
	}
	// Sends at 0, 0.3 and 0.9 s: the third is the first to get through.
	if d := time.Since(start); d < 900*time.Millisecond || d > probeTimeout {
		t.Fatalf("took %v, want the third send's answer", d)
	}
}

func TestProbeBlocked(t *testing.T) {
	t.Parallel()
	silent := listenLoopback(t, 2) // bound, so no ICMP port unreachable, but never answering
	start := time.Now()
	res, err := Probe(t.Context(), addrsOf(silent))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mapping != Blocked || res.Public.IsValid() {
		t.Fatalf("Probe = %+v, want Blocked without a public address", res)
	}
	if d := time.Since(start); d < probeTimeout || d > probeTimeout+time.Second {
		t.Fatalf("took %v, want about %v", d, probeTimeout)
	}
	// Every retransmission reached the servers.
	silent[0].SetReadDeadline(time.Now().Add(200 * time.Millisecond)) // all sent long ago
	buf := make([]byte, 1500)
	got := 0
	for ; ; got++ {
		if _, _, err := silent[0].ReadFrom(buf); err != nil {
			break
		}
	}
	if got != 4 {
		t.Fatalf("server got %d requests, want 4 (0, 0.3, 0.9, 2.1 s)", got)
	}
}

func TestProbeCancel(t *testing.T) {
	t.Parallel()
	silent := listenLoopback(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Probe(ctx, addrsOf(silent))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Probe = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("returned %v after its context ended", d)
	}
}

func TestProbeBadServers(t *testing.T) {
	t.Parallel()
	for _, servers := range [][]string{nil, {"127.0.0.1"}, {"127.0.0.1:0"}, {"127.0.0.1:3478", "host:x"}} {
		if _, err := Probe(t.Context(), servers); err == nil {
			t.Errorf("Probe(%q) succeeded", servers)
		}
	}
	if _, err := Probe(t.Context(), nil); !errors.Is(err, ErrNoServers) {
		t.Errorf("Probe(nil) = %v, want ErrNoServers", err)
	}
}

func TestServeStops(t *testing.T) {
	t.Parallel()
	if err := Serve(t.Context(), nil); err == nil {
		t.Fatal("Serve without conns succeeded")
	}
	conns := listenLoopback(t, 2)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, nil, conns...) }()
	// A conn failing stops Serve with that error, and the other reader too.
	conns[1].Close()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("Serve kept running after a conn failed")
	}
	cancel()
}

func TestClassify(t *testing.T) {
	ap := netip.MustParseAddrPort
	local := []netip.AddrPort{ap("192.168.1.2:4000"), ap("192.168.1.2:4000")}
	for _, c := range []struct {
		name   string
		local  []netip.AddrPort
		mapped []netip.AddrPort
		want   Result
	}{
		{"blocked", local, []netip.AddrPort{{}, {}},
			Result{Mapping: Blocked, Local: local[0]}},
		{"none", local, []netip.AddrPort{local[0], local[1]},
			Result{Mapping: None, Public: local[0], Local: local[0]}},
		{"none, one answer", local, []netip.AddrPort{{}, local[1]},
			Result{Mapping: None, Public: local[1], Local: local[1]}},
		{"cone", local, []netip.AddrPort{ap("1.2.3.4:4000"), ap("1.2.3.4:4000")},
			Result{Mapping: EndpointIndependent, Public: ap("1.2.3.4:4000"), Local: local[0]}},
		{"cone, port changed", local, []netip.AddrPort{ap("1.2.3.4:5000"), ap("1.2.3.4:5000")},
			Result{Mapping: EndpointIndependent, Public: ap("1.2.3.4:5000"), Local: local[0]}},
		{"symmetric port", local, []netip.AddrPort{ap("1.2.3.4:5000"), ap("1.2.3.4:5001")},
			Result{Mapping: Symmetric, Public: ap("1.2.3.4:5000"), Local: local[0]}},
		{"symmetric address", local, []netip.AddrPort{ap("1.2.3.4:5000"), ap("1.2.3.5:5000")},
			Result{Mapping: Symmetric, Public: ap("1.2.3.4:5000"), Local: local[0]}},
		{"nat, one answer", local, []netip.AddrPort{ap("1.2.3.4:5000"), {}},
			Result{Mapping: Unknown, Public: ap("1.2.3.4:5000"), Local: local[0]}},
		{"no servers", nil, nil, Result{Mapping: Blocked}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := classify(c.local, c.mapped); got != c.want {
				t.Fatalf("classify = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestResultString(t *testing.T) {
	pub := netip.MustParseAddrPort("1.2.3.4:5000")
	for _, c := range []struct {
		r    Result
		want string
	}{
		{Result{Mapping: None, Public: pub}, "no NAT (public address 1.2.3.4:5000; direct connections work)"},
		{Result{Mapping: EndpointIndependent, Public: pub}, "NAT with endpoint-independent mapping (public address 1.2.3.4:5000; hole punching can work)"},
		{Result{Mapping: Symmetric, Public: pub}, "symmetric NAT (hole punching won't work; traffic goes through the relay)"},
		{Result{Mapping: Blocked}, "UDP blocked (no STUN answer; the relay is reached over TCP, and hole punching can work only over TCP)"},
		{Result{Mapping: Unknown, Public: pub}, "NAT of unknown type (public address 1.2.3.4:5000; only one STUN server answered)"},
		{Result{}, "NAT type unknown"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%v: String() = %q, want %q", c.r.Mapping, got, c.want)
		}
	}
}

func TestMappingText(t *testing.T) {
	for m := Unknown; m <= Blocked; m++ {
		b, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Mapping
		if err := back.UnmarshalText(b); err != nil || back != m {
			t.Fatalf("%v -> %q -> %v, %v", m, b, back, err)
		}
	}
	if _, err := Mapping(99).MarshalText(); err == nil {
		t.Error("MarshalText(99) succeeded")
	}
	var m Mapping
	if err := m.UnmarshalText([]byte("cone")); err == nil {
		t.Error(`UnmarshalText("cone") succeeded`)
	}
}
