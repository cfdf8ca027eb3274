package natcheck

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-reuseport"
	"github.com/pion/stun/v3"

	"github.com/lanchat/lanchat/internal/leakcheck"
)

// serveTCP runs ServeTCP on a fresh loopback listener until the test ends,
// then checks it returned nil; it returns the listener's address.
func serveTCP(t testing.TB) string {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeTCP(ctx, testLogger(t), ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
		ln.Close()
	})
	return ln.Addr().String()
}

func TestProbeTCPFromListenPort(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("probe", func(t *testing.T) {
		server := serveTCP(t)
		// The port a libp2p host listens on, with SO_REUSEPORT as libp2p sets it.
		ln, err := reuseport.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		for range 2 { // again at once: no TIME-WAIT holds the 4-tuple
			got, err := ProbeTCP(t.Context(), server, port)
			if err != nil {
				t.Fatal(err)
			}
			if want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)); got != want {
				t.Fatalf("ProbeTCP = %v, want %v", got, want)
			}
		}
		// The listener still accepts.
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		// Any port.
		if got, err := ProbeTCP(t.Context(), server, 0); err != nil || got.Addr() != netip.MustParseAddr("127.0.0.1") || got.Port() == 0 {
			t.Fatalf("ProbeTCP from any port = %v, %v", got, err)
		}
	})
	leakcheck.Goroutines(t, before)
}

func TestProbeTCPRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := ProbeTCP(t.Context(), addr, 0); !errors.Is(err, ErrNoTCP) {
		t.Fatalf("ProbeTCP to a closed port = %v, want ErrNoTCP", err)
	}
}

func TestProbeTCPBadServers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		server string
		port   int
	}{{"127.0.0.1", 0}, {"127.0.0.1:0", 0}, {"host:x", 0}, {"127.0.0.1:3478", -1}, {"127.0.0.1:3478", 1 << 16}} {
		if _, err := ProbeTCP(t.Context(), c.server, c.port); err == nil {
			t.Errorf("ProbeTCP(%q, %d) succeeded", c.server, c.port)
		}
	}
}

// TestServeTCPJunk sends what is not a Binding request: each connection is
// closed unanswered, and a request after them is answered.
func TestServeTCPJunk(t *testing.T) {
	t.Parallel()
	server := serveTCP(t)
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	long := append([]byte(nil), req...)
	long[2], long[3] = 0xff, 0xfc // a length beyond maxPacket
	for _, c := range []struct {
		name string
		send []byte
	}{
		{"nothing", nil},
		{"http", []byte("GET / HTTP/1.1\r\nHost: relay\r\n\r\n")},
		{"response", stun.MustBuild(stun.TransactionID, stun.BindingSuccess).Raw},
		{"allocate", stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw},
		{"truncated", req[:len(req)-1]},
		{"too long", long},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp4", server)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write(c.send)
			conn.(*net.TCPConn).CloseWrite()
			conn.SetDeadline(time.Now().Add(2 * tcpTimeout))
			// Closed with bytes unread is a reset.
			got, err := io.ReadAll(conn)
			if len(got) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("got %q, %v; want the connection closed unanswered", got, err)
			}
		})
	}
	if _, err := ProbeTCP(t.Context(), server, 0); err != nil {
		t.Fatalf("after the junk: %v", err)
	}
}

// TestServeTCPStops: ending ctx ends ServeTCP at once, with a client
// connected that sends nothing.
func TestServeTCPStops(t *testing.T) {
	t.Parallel()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ServeTCP(ctx, nil, ln) }()
	idle, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(50 * time.Millisecond) // let it accept
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeTCP = %v, want nil", err)
		}
	case <-time.After(tcpTimeout / 2):
		t.Fatal("ServeTCP kept running after its context ended")
	}
	// A closed listener is an error.
	ln.Close()
	if err := ServeTCP(t.Context(), nil, ln); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ServeTCP on a closed listener = %v", err)
	}
}

// streamConn is a connection whose peer sent in and reads what is written.
type streamConn struct {
	net.Conn
	in  io.Reader
	out bytes.Buffer
}

func (c *streamConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *streamConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *streamConn) SetDeadline(time.Time) error { return nil }
func (c *streamConn) Close() error                { return nil }
func (c *streamConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}
}
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(11, 0, 0, 1), Port: 3478} }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeStream feeds arbitrary streams to a TCP connection's handler. It
// must never panic, must answer exactly when the stream begins with a
// well-formed Binding request, and the answer must frame as one message
// that exchangeStream's checks accept, naming the sender.
func FuzzServeStream(f *testing.F) {
	tid := stun.NewTransactionIDSetter([stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	req := stun.MustBuild(tid, stun.BindingRequest, stun.Fingerprint).Raw
	f.Add(req)
	f.Add(append(append([]byte(nil), req...), req...))
	f.Add(stun.MustBuild(tid, stun.BindingRequest, stun.NewSoftware("x")).Raw)
	f.Add(stun.MustBuild(tid, stun.BindingSuccess, &stun.XORMappedAddress{IP: []byte{1, 2, 3, 4}, Port: 5}).Raw)
	f.Add(req[:len(req)-1])
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\xff\xfc\x21\x12\xa4\x42 twelve bytes"))

	r := &responder{origin: netip.MustParseAddrPort("11.0.0.1:3478"), log: slog.New(slog.DiscardHandler)}
	src := netip.MustParseAddrPort("192.0.2.7:40000")
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := &streamConn{in: bytes.NewReader(stream)}
		r.serveStream(c, time.Time{})
		var probe stun.Message
		want := false
		if len(stream) >= headerSize && stun.IsMessage(stream) {
			n := headerSize + int(stream[2])<<8 + int(stream[3])
			want = n <= len(stream) && n <= maxPacket && stun.Decode(stream[:n], &probe) == nil && probe.Type == stun.BindingRequest
		}
		if got := c.out.Len() > 0; got != want {
			t.Fatalf("answered=%v, want %v", got, want)
		}
		if !want {
			return
		}
		// Replay the answer to a client that sent probe's transaction.
		pkt, err := readMessage(bytes.NewReader(c.out.Bytes()))
		if err != nil || len(pkt) != c.out.Len() {
			t.Fatalf("answer frames as %d of %d bytes: %v", len(pkt), c.out.Len(), err)
		}
		var got stun.Message
		if err := stun.Decode(pkt, &got); err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
		mapped, ok := mappedAddress(&got)
		if got.Type != stun.BindingSuccess || got.TransactionID != probe.TransactionID || !ok || mapped != src {
			t.Fatalf("answer %v (mapped %v) to %v", &got, mapped, &probe)
		}
	})
}

// FuzzReadMessage: framing never panics, never returns more than maxPacket,
// and returns exactly the message a well-formed stream begins with.
func FuzzReadMessage(f *testing.F) {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewSoftware("lanchat"), stun.Fingerprint).Raw
	f.Add(req)
	f.Add(append(append([]byte(nil), req...), "junk"...))
	f.Add(req[:headerSize])
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		msg, err := readMessage(bytes.NewReader(stream))
		if err != nil {
			if msg != nil {
				t.Fatalf("%d bytes with error %v", len(msg), err)
			}
			return
		}
		if len(msg) > maxPacket || !bytes.HasPrefix(stream, msg) || len(msg) != headerSize+int(stream[2])<<8+int(stream[3]) {
			t.Fatalf("read %d bytes from a stream of %d", len(msg), len(stream))
		}
	})
}
