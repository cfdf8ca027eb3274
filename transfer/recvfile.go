package transfer

import (
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

var errClosedEarly = errors.New("the sender closed the connection")

// target is where one file download goes.
type target struct {
	k    int         // candidate number: the offered name, "name (1).ext", …
	part string      // the .part's name in DestDir
	key  string      // the .part's absolute path, the key of Client.busy
	old  fs.FileInfo // the .part an earlier attempt left, or nil
}

// fetchFile downloads a regular file into a .part, then gives it its name.
func (c *Client) fetchFile(ctx context.Context, root *os.Root, r Request) (string, error) {
	if r.File.Size > math.MaxInt64 {
		return "", fmt.Errorf("offered size %d is more than a file can hold", r.File.Size)
	}
	size := int64(r.File.Size)
	t, err := c.claim(root, r.DestDir, r.File.Name, partTag(r.File))
	if err != nil {
		return "", err
	}
	defer c.unclaim(t)
	var offset int64
	if r.Resume && t.old != nil && t.old.Size() <= size {
		offset = t.old.Size()
	}
	m := newMeter(r.Progress, offset, size)
	if r.Progress != nil {
		defer func() { r.Progress(m.finish()) }()
	}
	if err := c.download(ctx, root, r, t, m); err != nil {
		return "", err
	}
	name, err := commit(root, t, r.File)
	if err != nil {
		return "", err
	}
	return filepath.Join(r.DestDir, name), nil
}

// download writes the requested bytes into t's .part. After a short read
// the .part stays for a later resume; after a long one it goes, since the
// sender's file is not the one offered.
func (c *Client) download(ctx context.Context, root *os.Root, r Request, t target, m *meter) error {
	req := ipmsg.FileRequest{Offer: r.Offer, ID: r.File.ID, Offset: uint64(m.p.Done)}
	conn, err := c.connect(ctx, r, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	f, err := openPart(root, t, m.p.Done)
	if err != nil {
		return err
	}
	err = c.receive(ctx, conn, f, m)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = interrupted(ctx, cerr, m.p)
	}
	if errors.Is(err, ErrOversize) {
		root.Remove(t.part)
	}
	return err
}

// receive copies the rest of the offered bytes from conn to f, in chunks
// under the idle deadline, then checks that the sender has no more. io.Copy
// from a *net.TCPConn behind an io.LimitedReader to an *os.File is
// splice(2) on Linux.
func (c *Client) receive(ctx context.Context, conn net.Conn, f *os.File, m *meter) error {
	lr := io.LimitedReader{R: conn}
	for left := m.p.Total - m.p.Done; left > 0; left = m.p.Total - m.p.Done {
		lr.N = min(left, recvChunk)
		want := lr.N
		conn.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		got, err := io.Copy(f, &lr)
		m.add(got)
		if err == nil && got < want {
			err = errClosedEarly
		}
		if err != nil {
			return interrupted(ctx, err, m.p)
		}
	}
	return ended(conn, m.p.Total)
}

// claim picks the first candidate name that is free and whose .part no
// other Fetch of this Client is writing, and marks that .part busy.
func (c *Client) claim(root *os.Root, dest, name, tag string) (target, error) {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return target{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range maxNumbered {
		t, ok, err := candidate(root, name, tag, k)
		if err != nil {
			return t, err
		}
		t.key = filepath.Join(abs, t.part)
		if ok && !c.busy[t.key] {
			c.busy[t.key] = true
			return t, nil
		}
	}
	return target{}, fmt.Errorf("no free name for %q after %d tries", name, maxNumbered)
}

func (c *Client) unclaim(t target) {
	c.mu.Lock()
	delete(c.busy, t.key)
	c.mu.Unlock()
}

// candidate checks candidate k for name: usable when no such entry exists
// and its .part is absent or a regular file (not a link someone placed).
func candidate(root *os.Root, name, tag string, k int) (t target, ok bool, err error) {
	final := numbered(name, k, false)
	t = target{k: k, part: partName(final, tag)}
	if err := errors.Join(local(final), local(t.part)); err != nil {
		return t, false, err
	}
	if _, err := root.Lstat(final); !errors.Is(err, fs.ErrNotExist) {
		return t, false, err // nil when it exists: try the next
	}
	fi, err := root.Lstat(t.part)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return t, false, nil
	case err == nil:
		t.old = fi
	case !errors.Is(err, fs.ErrNotExist):
		return t, false, err
	}
	return t, true, nil
}

// openPart creates t's .part, or opens the one an earlier attempt left and
// cuts it to offset. O_EXCL refuses anything placed under the name; an
// existing .part must still be the regular file candidate saw.
func openPart(root *os.Root, t target, offset int64) (*os.File, error) {
	if t.old == nil {
		f, err := root.OpenFile(t.part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		return f, diskFull(err)
	}
	f, err := root.OpenFile(t.part, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !os.SameFile(fi, t.old) {
		err = fmt.Errorf("%s was replaced while it was being opened", t.part)
	}
	if err == nil {
		err = f.Truncate(offset)
	}
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// commit gives the complete .part the offered mtime and the first free
// candidate name from t.k on. A hard link cannot replace an existing file,
// so it claims the name atomically; without hard links (FAT, some network
// shares) it renames after checking the name is free.
func commit(root *os.Root, t target, f ipmsg.File) (string, error) {
	if f.MTime > 0 {
		root.Chtimes(t.part, time.Time{}, time.Unix(f.MTime, 0)) // best effort: the content matters more
	}
	for k := t.k; k < maxNumbered; k++ {
		name := numbered(f.Name, k, false)
		if err := local(name); err != nil {
			return "", err
		}
		err := root.Link(t.part, name)
		if err == nil {
			root.Remove(t.part)
			return name, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if _, err := root.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return name, root.Rename(t.part, name)
	}
	return "", fmt.Errorf("no free name for %q after %d tries", f.Name, maxNumbered)
}
