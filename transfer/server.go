package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

// ServerConfig configures a Server. Zero fields take the defaults given.
type ServerConfig struct {
	Logger *slog.Logger // default: discard
	// Charset gives the charset of folder-stream names for a peer: the one
	// the caller keeps for it (protocol §7.4). A request with UTF8OPT gets
	// UTF-8 regardless, as IP Messenger asks. Default: UTF-8 for everyone.
	Charset func(netip.Addr) ipmsg.Charset
	// MaxConns bounds the connections served at once; more are closed on
	// arrival. Default 16.
	MaxConns int
	// RequestTimeout is how long a new connection has to send its request.
	// Default 10 s.
	RequestTimeout time.Duration
	// IdleTimeout drops a peer that takes no data for this long. Default 60 s.
	IdleTimeout time.Duration
	// MaxAge ends offers this long after Share. Default 0: an offer lasts
	// until released or cancelled, as IP Messenger's do, because iptux users
	// accept files by hand, often much later.
	MaxAge time.Duration
	// OnUpload, if set, receives progress of every request being served:
	// at most ten reports a second and a Final one. It is called on the
	// connection's goroutine and must not block.
	OnUpload func(Upload)
}

// Upload is a progress report of one served request.
type Upload struct {
	Offer uint64     // PacketNo of the offer
	ID    uint64     // file ID in it
	To    netip.Addr // the peer fetching it
	Name  string     // the offered name
	Progress
	Err error // on the Final report: why it stopped early, or nil
}

// Server timing that is not worth a Config field.
const (
	// lingerTime bounds the wait for the peer's close after the last byte;
	// see finish.
	lingerTime = 2 * time.Second
	// sendChunk is how much goes out per write deadline. Chunks also keep
	// progress moving; sendfile moves at most 4 MiB a call anyway.
	sendChunk = 4 << 20
	// maxAcceptDelay caps the back-off after a failed Accept (out of file
	// descriptors), as net/http does.
	maxAcceptDelay = time.Second
)

// Server serves the files and folders of the offers registered with Share
// to the peers they were offered to.
type Server struct {
	cfg ServerConfig
	sem chan struct{} // one token per connection being served

	mu       sync.Mutex
	offers   map[uint64]*offer // by offer PacketNo
	nextConn uint64            // key for the next entry of offer.conns
}

// NewServer returns a Server with no offers.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Charset == nil {
		cfg.Charset = func(netip.Addr) ipmsg.Charset { return ipmsg.UTF8 }
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	return &Server{cfg: cfg, sem: make(chan struct{}, cfg.MaxConns), offers: map[uint64]*offer{}}
}

// Serve accepts file requests on ln until ctx is done, then closes ln and
// every connection and returns nil once all have ended. It returns early,
// with the error, if ln fails for good. ln is normally the TCP listener on
// the IPMsg port; Serve may run on several listeners at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // last: the connections end once cancel has closed them
	defer cancel()
	defer ln.Close()
	defer context.AfterFunc(ctx, func() { ln.Close() })() // ends a blocked Accept
	var delay time.Duration
	for {
		c, err := ln.Accept()
		switch {
		case ctx.Err() != nil:
			if c != nil {
				c.Close()
			}
			return nil
		case err != nil && !retryable(err):
			return fmt.Errorf("transfer: serve: %w", err)
		case err != nil:
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
			s.cfg.Logger.Warn("accept failed; retrying", "err", err, "delay", delay)
			sleep(ctx, delay)
			continue
		}
		delay = 0
		s.start(ctx, &wg, c)
	}
}

// start serves c on a goroutine of wg if there is room, and closes it if
// not: a peer that is refused at once can retry, one left waiting cannot
// tell.
func (s *Server) start(ctx context.Context, wg *sync.WaitGroup, c net.Conn) {
	select {
	case s.sem <- struct{}{}:
		wg.Go(func() { defer func() { <-s.sem }(); s.handle(ctx, c) })
	default:
		s.cfg.Logger.Warn("file request refused: too many connections", "from", c.RemoteAddr(), "limit", s.cfg.MaxConns)
		c.Close()
	}
}

// retryable reports whether Accept may succeed later: the process or
// system ran out of descriptors or memory.
func retryable(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// handle serves one connection: one request, then close.
func (s *Server) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Serve's end and Cancel cancel ctx; closing the connection ends a
	// blocked read or write at once.
	defer context.AfterFunc(ctx, func() { c.Close() })()
	from := plainAddr(remoteAddr(c))
	p, req, err := s.readRequest(c)
	if err != nil {
		s.cfg.Logger.Info("file request refused", "from", from, "err", err)
		return
	}
	sh, done, err := s.claim(req, from, cancel)
	if err != nil {
		s.cfg.Logger.Info("file request refused", "from", from, "err", err)
		return
	}
	defer done()
	s.serve(c, p, req, sh, from)
}

func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr()
}

// readRequest reads the request under RequestTimeout, so a peer that never
// finishes it cannot hold a connection.
func (s *Server) readRequest(c net.Conn) (ipmsg.Packet, ipmsg.FileRequest, error) {
	c.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
	p, req, err := ipmsg.ReadFileRequest(bufio.NewReaderSize(c, 256))
	c.SetReadDeadline(time.Time{})
	return p, req, err
}

// serve answers a request that may be served, and reports how it went.
func (s *Server) serve(c net.Conn, p ipmsg.Packet, req ipmsg.FileRequest, sh shared, from netip.Addr) {
	up := Upload{Offer: req.Offer, ID: sh.file.ID, To: from, Name: sh.file.Name}
	report := func(Progress) {}
	if s.cfg.OnUpload != nil {
		report = func(pr Progress) { u := up; u.Progress = pr; s.cfg.OnUpload(u) }
	}
	log := s.cfg.Logger.With("from", from, "offer", req.Offer, "id", sh.file.ID, "name", sh.file.Name)
	log.Debug("serving file request", "folder", req.Dir, "offset", req.Offset)
	o := &sender{conn: c, idle: s.cfg.IdleTimeout, cs: s.charset(p, from)}
	start := min(req.Offset, sh.file.Size)
	if req.Dir {
		start = 0 // iptux sends ":0" after GETDIRFILES; folders have no offset
	}
	o.m = newMeter(report, int64(start), int64(sh.file.Size))
	up.Err = o.send(req, sh)
	if up.Err == nil {
		finish(c)
	}
	up.Progress = o.m.finish()
	if s.cfg.OnUpload != nil {
		s.cfg.OnUpload(up)
	}
	if up.Err != nil {
		log.Info("file request failed", "bytes", up.Done, "err", up.Err)
	} else {
		log.Debug("file request done", "bytes", up.Done)
	}
}

// charset is the charset of folder names for this request.
func (s *Server) charset(p ipmsg.Packet, from netip.Addr) ipmsg.Charset {
	if p.Command.Has(ipmsg.UTF8Opt) {
		return ipmsg.UTF8
	}
	return s.cfg.Charset(from)
}

// finish ends a connection so that the peer reads every byte and then EOF.
// Closing a socket with unread input sends a reset, which can destroy data
// the peer has not read yet, and a client may have sent more than the
// request (iptux writes "0\x00" after GETDIRFILES's arguments). So
// half-close, then read and drop what comes until the peer closes, for a
// short while.
func finish(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}
