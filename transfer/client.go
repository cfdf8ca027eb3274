package transfer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

// ClientConfig configures a Client. Zero fields take the defaults given.
type ClientConfig struct {
	Logger *slog.Logger // default: discard
	// LocalAddr is the source address of connections; IP Messenger serves
	// only the address it offered to. Default: the system's choice.
	LocalAddr netip.Addr
	// DialTimeout bounds connecting. Default 10 s.
	DialTimeout time.Duration
	// Dial, if set, connects to a sender instead of TCP: for senders
	// reached some other way (lanchat's relay members), it returns a
	// connection to the address a Request names, or ok false for TCP.
	Dial func(ctx context.Context, to netip.AddrPort) (c net.Conn, ok bool, err error)
	// IdleTimeout drops a sender that sends nothing for this long.
	// Default 60 s.
	IdleTimeout time.Duration
	// MaxFolderBytes, MaxFolderEntries and MaxFolderDepth bound what one
	// folder stream may create: content bytes (default 1 TiB), files and
	// folders (default 1,000,000) and nesting (default 64 levels).
	MaxFolderBytes   int64
	MaxFolderEntries int
	MaxFolderDepth   int
}

// Request says what Fetch fetches, from whom and where to.
type Request struct {
	From netip.AddrPort // the sender's TCP address: its IP and IPMsg port
	// Header is the request's packet header: Version (default "1"), No
	// (the caller's next PacketNo), User and Host (in the peer's charset).
	// Command supplies options only; its mode is set by Fetch. Leave it 0
	// to send exactly GETFILEDATA (96) or GETDIRFILES (98), or set UTF8OPT
	// toward IP Messenger when its offer had UTF8OPT, which asks it for
	// UTF-8 names in a folder stream.
	Header ipmsg.Packet
	Offer  uint64     // PacketNo of the offer
	File   ipmsg.File // the entry from the offer
	// Charset is the peer's charset, for folder-stream names: UTF-8 anyway
	// if Header has UTF8OPT, and as ipmsg.DecodeText decides if Unknown.
	Charset ipmsg.Charset
	DestDir string // created if missing
	// Resume continues a .part left in DestDir by an earlier Fetch of the
	// same offer, by asking for the bytes from its size on. Set it only for
	// peers that honour offsets (lanchat, FeiQ clones): IP Messenger and
	// iptux send from 0 whatever the offset, and bytes cannot tell. Without
	// it an old .part is started again from 0.
	Resume bool
	// Progress, if set, receives at most ten reports a second and a Final
	// one, on Fetch's goroutine.
	Progress func(Progress)
}

// Client timing that is not worth a Config field.
const (
	// closeWait is how long to wait for the sender's close after the last
	// expected byte, to tell "done" from "sent more than offered". A sender
	// that keeps the connection open longer is taken to be done.
	closeWait = 2 * time.Second
	// recvChunk is how much is read per read deadline and progress step.
	recvChunk = 4 << 20
	// maxNumbered bounds the "name (k)" candidates tried.
	maxNumbered = 10000
)

// Client fetches offered files and folders.
type Client struct {
	cfg ClientConfig

	mu   sync.Mutex
	busy map[string]bool // .part files being written, by absolute path
}

// NewClient returns a Client.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.MaxFolderBytes <= 0 {
		cfg.MaxFolderBytes = 1 << 40
	}
	if cfg.MaxFolderEntries <= 0 {
		cfg.MaxFolderEntries = 1_000_000
	}
	if cfg.MaxFolderDepth <= 0 {
		cfg.MaxFolderDepth = 64
	}
	return &Client{cfg: cfg, busy: map[string]bool{}}
}

// Fetch downloads the offered file or folder r.File into r.DestDir and
// returns the path it was saved at. The name is the offered one, or
// "name (1).ext", "name (2).ext", … if taken: nothing is overwritten. A file
// is written to "name.part" and renamed when all its bytes are there, with
// the offered mtime; a folder is built under its final name and removed if
// the stream fails, since folder streams cannot resume. Canceling ctx closes
// the connection. Errors wrap ErrUnsafeName, ErrIncomplete, ErrOversize,
// ErrBadStream, ErrTooLarge, ErrDiskFull or ctx's error where they apply.
func (c *Client) Fetch(ctx context.Context, r Request) (path string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("transfer: fetch %q: %w", truncate(r.File.Name, 64), err)
		}
	}()
	if err := CheckName(r.File.Name); err != nil {
		return "", err
	}
	if err := os.MkdirAll(r.DestDir, 0o777); err != nil {
		return "", err
	}
	root, err := os.OpenRoot(r.DestDir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	switch r.File.Type() {
	case ipmsg.FileRegular, ipmsg.FileClipboard:
		return c.fetchFile(ctx, root, r)
	case ipmsg.FileDir:
		return c.fetchFolder(ctx, root, r)
	}
	return "", fmt.Errorf("attachment type %#x is neither a file nor a folder", r.File.Type())
}

// connect dials the sender and writes the request.
func (c *Client) connect(ctx context.Context, r Request, req ipmsg.FileRequest) (net.Conn, error) {
	conn, err := c.dial(ctx, r.From)
	if err != nil {
		return nil, err
	}
	conn.SetWriteDeadline(time.Now().Add(c.cfg.IdleTimeout))
	if _, err := conn.Write(requestPacket(r.Header, req)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("send request: %w", err)
	}
	c.cfg.Logger.Debug("file request sent", "to", r.From, "offer", r.Offer, "id", r.File.ID,
		"folder", req.Dir, "offset", req.Offset)
	return conn, nil
}

func (c *Client) dial(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	if c.cfg.Dial != nil {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
		defer cancel()
		if conn, ok, err := c.cfg.Dial(ctx, to); ok {
			return conn, err
		}
	}
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	if c.cfg.LocalAddr.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.cfg.LocalAddr, 0))
	}
	return d.DialContext(ctx, "tcp", to.String())
}

// requestPacket is h with the mode of req (h's options kept) and req's
// arguments in IP Messenger's form, "offer:id:offset:" or "offer:id:".
func requestPacket(h ipmsg.Packet, req ipmsg.FileRequest) []byte {
	if len(h.Version) == 0 {
		h.Version = []byte(ipmsg.Version)
	}
	h.Command = req.Command() | h.Command.Opts()
	h.Extra = ipmsg.AppendFileRequest(nil, req)
	return h.Append(nil)
}

// ended tells a finished sender from one that goes on: after the last
// expected byte it reads once more, briefly. EOF, a reset or silence mean
// done; a byte means the sender had more than it offered.
func ended(conn net.Conn, size int64) error {
	conn.SetReadDeadline(time.Now().Add(closeWait))
	var b [1]byte
	if n, _ := conn.Read(b[:]); n > 0 {
		return fmt.Errorf("%w: more than %d bytes", ErrOversize, size)
	}
	return nil
}

// interrupted explains why a transfer stopped: ctx was canceled (the
// connection was closed for it), the disk is full, or the connection
// failed or ended early.
func interrupted(ctx context.Context, err error, p Progress) error {
	switch full := diskFull(err); {
	case ctx.Err() != nil:
		return ctx.Err()
	case full != err:
		return full
	case p.Total > 0:
		return fmt.Errorf("%w after %d of %d bytes: %w", ErrIncomplete, p.Done, p.Total, err)
	}
	return fmt.Errorf("%w after %d bytes: %w", ErrIncomplete, p.Done, err)
}
