package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

// fetchFolder downloads a folder stream into a new folder in root.
func (c *Client) fetchFolder(ctx context.Context, root *os.Root, r Request) (string, error) {
	conn, err := c.connect(ctx, r, ipmsg.FileRequest{Offer: r.Offer, ID: r.File.ID, Dir: true})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	src := &idleReader{conn: conn, idle: c.cfg.IdleTimeout}
	w := &folderWriter{
		dest: root, br: bufio.NewReaderSize(src, streamBuf), cs: r.Charset,
		limits: c.limits(), m: newMeter(r.Progress, 0, int64(min(r.File.Size, math.MaxInt64))),
		buf: make([]byte, streamBuf), atEnd: func() { src.idle = closeWait },
	}
	if r.Header.Command.Has(ipmsg.UTF8Opt) {
		w.cs = ipmsg.UTF8
	}
	err = w.receive(r.File.Name)
	if r.Progress != nil {
		r.Progress(w.m.finish())
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", err
	}
	return filepath.Join(r.DestDir, w.top), nil
}

// idleReader reads from conn under a deadline renewed at every read, so a
// sender is dropped only when it stalls, however long the stream.
type idleReader struct {
	conn net.Conn
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.conn.SetReadDeadline(time.Now().Add(r.idle))
	return r.conn.Read(p)
}

// limits bounds one folder stream.
type limits struct {
	bytes          int64
	entries, depth int
}

func (c *Client) limits() limits {
	return limits{c.cfg.MaxFolderBytes, c.cfg.MaxFolderEntries, c.cfg.MaxFolderDepth}
}

// folderWriter builds the tree a folder stream describes. Each folder
// being filled is an os.Root, so nothing it creates can leave it.
type folderWriter struct {
	limits
	dest    *os.Root
	br      *bufio.Reader
	cs      ipmsg.Charset
	m       *meter
	buf     []byte
	atEnd   func() // called before waiting for the end of the stream, if set
	top     string // the top folder's name in dest, once made
	stack   []frame
	entries int
	bytes   int64
}

// frame is a folder entered and not yet left.
type frame struct {
	root   *os.Root // the folder
	parent *os.Root // what it was made in
	name   string   // its name there
	rel    string   // its path from dest
	mtime  int64
}

// receive reads the whole stream into a new folder in dest called name (or
// "name (1)", …). On failure it removes what it made.
func (w *folderWriter) receive(name string) error {
	err := w.run(name)
	if err == nil {
		err = w.end()
	}
	for len(w.stack) > 0 {
		w.pop()
	}
	if err != nil && w.top != "" {
		w.dest.RemoveAll(w.top)
	}
	return err
}

// run reads records until the one that leaves the top folder.
func (w *folderWriter) run(name string) error {
	h, err := w.next()
	if err != nil {
		return err
	}
	if h.Type() != ipmsg.FileDir {
		return fmt.Errorf("%w: it starts with a record of type %#x, not its folder", ErrBadStream, h.Type())
	}
	if err := CheckName(h.Name); err != nil {
		return err
	}
	if err := w.mkdir(frame{root: w.dest}, name, h.MTime); err != nil {
		return err
	}
	w.top = w.stack[0].name
	for len(w.stack) > 0 {
		if h, err = w.next(); err == nil {
			err = w.record(h)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// next reads a record header and counts it against the limit.
func (w *folderWriter) next() (ipmsg.DirHeader, error) {
	h, err := ipmsg.ReadDirHeader(w.br, w.cs)
	switch {
	case err == io.EOF:
		return h, fmt.Errorf("%w: the stream ended %d folders deep", ErrIncomplete, len(w.stack))
	case errors.Is(err, ipmsg.ErrMalformed) || errors.Is(err, ipmsg.ErrTooLarge):
		return h, fmt.Errorf("%w: %w", ErrBadStream, err)
	case err != nil:
		return h, fmt.Errorf("%w after %d bytes: %w", ErrIncomplete, w.m.p.Done, err)
	}
	if w.entries++; w.entries > w.limits.entries {
		return h, fmt.Errorf("%w: more than %d entries", ErrTooLarge, w.limits.entries)
	}
	return h, nil
}

// record acts on one record inside the top folder.
func (w *folderWriter) record(h ipmsg.DirHeader) error {
	switch h.Type() {
	case ipmsg.FileRetParent:
		w.pop()
		return nil
	case ipmsg.FileDir:
		if len(w.stack) >= w.limits.depth {
			return fmt.Errorf("%w: folders nested deeper than %d", ErrTooLarge, w.limits.depth)
		}
		if err := CheckName(h.Name); err != nil {
			return err
		}
		return w.mkdir(w.stack[len(w.stack)-1], h.Name, h.MTime)
	case ipmsg.FileRegular:
		if err := CheckName(h.Name); err != nil {
			return err
		}
		return w.file(h)
	}
	// Links, devices and the like: IP Messenger and iptux never send them.
	// Skip the content, if any, and go on.
	if err := w.take(h.Size); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, w.br, int64(h.Size))
	return w.readErr(err)
}

// mkdir makes a new folder in the folder of parent and enters it.
func (w *folderWriter) mkdir(parent frame, name string, mtime int64) error {
	for k := range maxNumbered {
		cand := numbered(name, k, true)
		rel := filepath.Join(parent.rel, cand)
		if err := local(rel); err != nil {
			return err
		}
		err := parent.root.Mkdir(cand, 0o777)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return diskFull(err)
		}
		sub, err := parent.root.OpenRoot(cand)
		if err != nil {
			return err
		}
		w.stack = append(w.stack, frame{root: sub, parent: parent.root, name: cand, rel: rel, mtime: mtime})
		w.m.file()
		return nil
	}
	return fmt.Errorf("no free name for folder %q after %d tries", name, maxNumbered)
}

// pop leaves the current folder and gives it its mtime, now that nothing
// more will be made in it.
func (w *folderWriter) pop() {
	f := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	f.root.Close()
	setMTime(f.parent, f.name, f.mtime)
}

// file writes a regular file's content into a new file in the current
// folder.
func (w *folderWriter) file(h ipmsg.DirHeader) error {
	if err := w.take(h.Size); err != nil {
		return err
	}
	dir := w.stack[len(w.stack)-1]
	f, name, err := createNew(dir, h.Name)
	if err != nil {
		return err
	}
	err = w.copy(f, int64(h.Size))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = diskFull(cerr)
	}
	if err != nil {
		return err
	}
	setMTime(dir.root, name, h.MTime)
	w.m.file()
	return nil
}

// take counts size content bytes against the limit.
func (w *folderWriter) take(size uint64) error {
	if size > uint64(w.limits.bytes-w.bytes) {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, w.limits.bytes)
	}
	w.bytes += int64(size)
	return nil
}

// copy moves n content bytes from the stream to f.
func (w *folderWriter) copy(f *os.File, n int64) error {
	for n > 0 {
		got, err := io.ReadFull(w.br, w.buf[:min(n, int64(len(w.buf)))])
		if _, werr := f.Write(w.buf[:got]); werr != nil {
			return diskFull(werr)
		}
		n -= int64(got)
		w.m.add(int64(got))
		if err != nil {
			return w.readErr(err)
		}
	}
	return nil
}

// readErr explains a failure to read content the header announced.
func (w *folderWriter) readErr(err error) error {
	if err == nil {
		return nil
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = errClosedEarly
	}
	return fmt.Errorf("%w after %d bytes: %w", ErrIncomplete, w.m.p.Done, err)
}

// end checks that nothing follows the record that left the top folder. A
// sender that keeps the connection open is taken to be done.
func (w *folderWriter) end() error {
	if w.atEnd != nil {
		w.atEnd()
	}
	if _, err := w.br.Peek(1); err != nil {
		return nil
	}
	h, err := ipmsg.ReadDirHeader(w.br, w.cs)
	if err == nil && h.Type() == ipmsg.FileRetParent {
		return fmt.Errorf("%w: it leaves its top folder and then climbs higher", ErrBadStream)
	}
	return fmt.Errorf("%w: data after the end of its folder", ErrBadStream)
}

// createNew creates a file called name in dir, or "name (1).ext", … if that
// is taken. O_EXCL refuses to open anything already there, links included.
func createNew(dir frame, name string) (*os.File, string, error) {
	for k := range maxNumbered {
		cand := numbered(name, k, false)
		if err := local(filepath.Join(dir.rel, cand)); err != nil {
			return nil, "", err
		}
		f, err := dir.root.OpenFile(cand, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, cand, diskFull(err)
	}
	return nil, "", fmt.Errorf("no free name for %q after %d tries", name, maxNumbered)
}

// setMTime gives a received entry the sender's mtime, when it sent one.
// It is best effort: failing to keep a time is no reason to fail a transfer.
func setMTime(dir *os.Root, name string, mtime int64) {
	if mtime > 0 {
		dir.Chtimes(name, time.Time{}, time.Unix(mtime, 0))
	}
}
