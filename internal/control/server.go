package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/lanchat/lanchat/peer"
	"github.com/lanchat/lanchat/relay"
)

// maxRequest bounds one request line; a message text is the largest part.
const maxRequest = 4 << 20

// Server answers control requests for one engine, or for a relay.
type Server struct {
	eng   Engine
	admin RelayAdmin
	log   *slog.Logger
	ln    net.Listener
	path  string
	wg    sync.WaitGroup
}

// Listen creates the socket. A stale socket left by a crash is replaced;
// a live one means another node uses the folder, which is an error.
func Listen(dataDir string, eng Engine, log *slog.Logger) (*Server, error) {
	s, err := listen(dataDir, log)
	if err != nil {
		return nil, err
	}
	s.eng = eng
	return s, nil
}

// ListenRelay creates a relay's control socket.
func ListenRelay(dataDir string, admin RelayAdmin, log *slog.Logger) (*Server, error) {
	s, err := listen(dataDir, log)
	if err != nil {
		return nil, err
	}
	s.admin = admin
	return s, nil
}

func listen(dataDir string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := SocketPath(dataDir)
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("another lanchat is already running with data folder %s", dataDir)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &Server{log: log, ln: ln, path: path}, nil
}

// Serve answers connections until ctx is done, then closes the socket and
// waits for every connection to end.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	var conns sync.Map
	for {
		c, err := s.ln.Accept()
		if err != nil {
			conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
			s.wg.Wait()
			os.Remove(s.path)
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		conns.Store(c, true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conns.Delete(c)
			defer c.Close()
			s.serveConn(ctx, c)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64*1024), maxRequest)
	w := &writer{enc: json.NewEncoder(c)}
	for sc.Scan() {
		var req Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			w.fail(fmt.Errorf("bad request: %w", err))
			continue
		}
		if req.Op == "events" && s.eng != nil {
			go func() { // a hang-up ends the stream
				for sc.Scan() {
				}
				cancel()
			}()
			s.events(ctx, w)
			return
		}
		s.do(ctx, req, w)
	}
}

type writer struct{ enc *json.Encoder }

func (w *writer) item(kind string, v any) error {
	return w.enc.Encode(Response{Kind: kind, Data: mustJSON(v)})
}

func (w *writer) done() { w.enc.Encode(Response{Done: true}) }

func (w *writer) fail(err error) { w.enc.Encode(Response{Error: err.Error()}) }

func (s *Server) do(ctx context.Context, req Request, w *writer) {
	if s.admin != nil {
		s.doAdmin(ctx, req, w)
		return
	}
	var err error
	switch req.Op {
	case "peers":
		for _, c := range s.eng.Contacts() {
			w.item("contact", c)
		}
	case "send":
		err = s.send(ctx, req, w)
	case "away":
		s.eng.SetAway(req.Away, req.Text)
	case "name":
		s.eng.SetName(req.Nick, req.Group)
	case "history":
		var msgs []peer.Message
		msgs, err = s.eng.History(req.Peer, req.Limit)
		for _, m := range msgs {
			w.item("message", m)
		}
	case "open":
		err = s.eng.Open(ctx, req.ID)
	case "status":
		w.item("self", s.eng.Self())
	case "accept":
		err = s.accept(ctx, req, w)
	case "decline":
		err = s.eng.Decline(req.ID)
	case "transfers":
		for _, t := range s.eng.Transfers() {
			w.item("transfer", t)
		}
	case "cancel":
		err = s.eng.Cancel(req.ID)
	case "join":
		var addrs []string
		if addrs, err = s.eng.Join(ctx, req.Code); err == nil {
			w.item("relay", addrs)
		}
	case "group":
		var gs []relay.Group
		gs, err = s.eng.RelayGroup(ctx, req.GroupOp, req.Group, req.Nick, req.To)
		for _, g := range gs {
			w.item("group", g)
		}
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	if err != nil {
		w.fail(err)
		return
	}
	w.done()
}

func (s *Server) send(ctx context.Context, req Request, w *writer) error {
	msgs, err := s.eng.Send(ctx, req.To, req.Text, peer.SendOptions{Seal: req.Seal, Files: req.Files})
	for _, m := range msgs {
		w.item("message", m)
	}
	return err
}

// accept starts the downloads of an offer; with Wait it streams their
// progress until each has ended. It subscribes first, so no report is missed.
func (s *Server) accept(ctx context.Context, req Request, w *writer) error {
	ch, stop := s.eng.Subscribe()
	defer stop()
	ts, err := s.eng.Accept(req.ID, req.Dir)
	if err != nil {
		return err
	}
	open := map[string]bool{}
	for _, t := range ts {
		w.item("transfer", t)
		open[t.ID] = true
	}
	for req.Wait && len(open) > 0 {
		select {
		case e, ok := <-ch:
			if !ok {
				return errors.New("the node stopped")
			}
			if te, ok := e.(peer.TransferEvent); ok && open[te.Transfer.ID] {
				w.item("transfer", te.Transfer)
				if te.Transfer.State.Final() {
					delete(open, te.Transfer.ID)
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *Server) events(ctx context.Context, w *writer) {
	ch, stop := s.eng.Subscribe()
	defer stop()
	w.done() // subscribed: the client may now trigger what it wants to see
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return
			}
			if w.item(EventKind(e), e) != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// doAdmin answers a relay's control requests.
func (s *Server) doAdmin(ctx context.Context, req Request, w *writer) {
	var err error
	switch req.Op {
	case "invite":
		ttl := 7 * 24 * time.Hour
		if req.TTL != "" {
			if ttl, err = time.ParseDuration(req.TTL); err != nil {
				break
			}
		}
		var code string
		if code, err = s.admin.Invite(ctx, ttl, req.Text); err == nil {
			w.item("invite", code)
		}
	case "members":
		var ms []relay.Member
		ms, err = s.admin.Members(ctx)
		for _, m := range ms {
			w.item("member", m)
		}
	case "remove":
		err = s.admin.Remove(ctx, req.ID)
	case "status":
		var st relay.Status
		if st, err = s.admin.Status(ctx); err == nil {
			w.item("relay", st)
		}
	default:
		err = fmt.Errorf("unknown op %q for a relay", req.Op)
	}
	if err != nil {
		w.fail(err)
		return
	}
	w.done()
}
