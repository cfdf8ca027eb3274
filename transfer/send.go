package transfer

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

// Folder stream sending.
const (
	// streamBuf buffers folder headers and small files, so a folder of
	// small files goes out in few large writes.
	streamBuf = 64 << 10
	// directMin is the size from which a file in a folder goes straight
	// from the file to the socket (sendfile) instead of through streamBuf.
	directMin = streamBuf
	// maxSendDepth stops a walk that loops through bind mounts.
	maxSendDepth = 256
)

var errShrank = errors.New("file shrank while it was being sent")

// sender answers one request on conn.
type sender struct {
	conn  net.Conn
	idle  time.Duration
	cs    ipmsg.Charset // of folder-stream names
	m     *meter
	bw    *bufio.Writer // folder streams only
	hdr   []byte
	lr    io.LimitedReader
	depth int
}

// send answers GETFILEDATA with raw bytes and GETDIRFILES with a folder
// stream, or with a one-record stream for a regular file (protocol §6.4).
func (o *sender) send(req ipmsg.FileRequest, sh shared) error {
	isDir := sh.file.Type() == ipmsg.FileDir
	switch {
	case !req.Dir && isDir:
		return fmt.Errorf("GETFILEDATA for folder %s", sh.path)
	case !req.Dir:
		return o.file(sh, req.Offset)
	}
	o.bw = bufio.NewWriterSize(o.conn, streamBuf)
	var err error
	if isDir {
		err = o.folder(sh)
	} else {
		err = o.oneRecord(sh)
	}
	if err != nil {
		return err
	}
	return o.bw.Flush()
}

// file sends the offered bytes from offset on: never more than offered.
func (o *sender) file(sh shared, offset uint64) error {
	f, err := openShared(sh)
	if err != nil {
		return err
	}
	defer f.Close()
	if offset > sh.file.Size {
		return fmt.Errorf("offset %d beyond the %d bytes offered", offset, sh.file.Size)
	}
	if _, err := f.Seek(int64(offset), io.SeekStart); err != nil {
		return err
	}
	return o.direct(f, int64(sh.file.Size-offset))
}

// openShared opens an offered regular file and checks it still holds the
// offered bytes. One that shrank is refused before anything is sent, since
// a short transfer would look like a broken connection to the peer.
func openShared(sh shared) (*os.File, error) {
	f, err := os.Open(sh.path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%s is no longer a regular file", sh.path)
	case uint64(fi.Size()) < sh.file.Size:
		err = fmt.Errorf("%s shrank from %d to %d bytes since it was offered", sh.path, sh.file.Size, fi.Size())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// direct copies n bytes of f to the connection in chunks, each under the
// idle deadline. io.Copy from an *os.File behind an io.LimitedReader to a
// *net.TCPConn is sendfile(2): the bytes never enter user space.
func (o *sender) direct(f *os.File, n int64) error {
	o.lr.R = f
	for n > 0 {
		o.lr.N = min(n, sendChunk)
		want := o.lr.N
		o.conn.SetWriteDeadline(time.Now().Add(o.idle))
		sent, err := io.Copy(o.conn, &o.lr)
		n -= sent
		o.m.add(sent)
		if err != nil {
			return err
		}
		if sent < want {
			return errShrank
		}
	}
	return nil
}

// oneRecord answers GETDIRFILES for a regular file: its record and bytes.
func (o *sender) oneRecord(sh shared) error {
	f, err := openShared(sh)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := o.header(sh.file.Name, sh.file.Size, ipmsg.FileRegular, sh.file.MTime); err != nil {
		return err
	}
	return o.content(f, int64(sh.file.Size))
}

// folder sends the offered folder as a stream. Everything is opened
// through an os.Root on it, so a symlink swapped in after the offer cannot
// lead the walk outside.
func (o *sender) folder(sh shared) error {
	root, err := os.OpenRoot(sh.path)
	if err != nil {
		return err
	}
	defer root.Close()
	fi, err := root.Stat(".")
	if err != nil {
		return err
	}
	return o.dir(root, sh.file.Name, fi)
}

// dir sends the record that enters a folder, its entries in name order,
// and the record that leaves it.
func (o *sender) dir(root *os.Root, name string, fi fs.FileInfo) error {
	if o.depth == maxSendDepth {
		return fmt.Errorf("folder %s is nested deeper than %d", name, maxSendDepth)
	}
	o.depth++
	defer func() { o.depth-- }()
	mtime := max(fi.ModTime().Unix(), 0)
	if err := o.header(name, 0, ipmsg.FileDir, mtime); err != nil {
		return err
	}
	o.m.file()
	entries, err := readDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := o.entry(root, e); err != nil {
			return err
		}
	}
	return o.header(".", 0, ipmsg.FileRetParent, mtime)
}

func readDir(root *os.Root) ([]fs.DirEntry, error) {
	d, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return cmp.Compare(a.Name(), b.Name()) })
	return entries, err
}

// entry sends one folder entry. Only folders and regular files go: that is
// all IP Messenger and iptux send, and a symlink could point anywhere.
func (o *sender) entry(root *os.Root, e fs.DirEntry) error {
	switch {
	case e.IsDir():
		sub, err := root.OpenRoot(e.Name())
		if err != nil {
			return err
		}
		defer sub.Close()
		fi, err := sub.Stat(".")
		if err != nil {
			return err
		}
		return o.dir(sub, e.Name(), fi)
	case e.Type().IsRegular():
		return o.member(root, e.Name())
	}
	return nil
}

// member sends a regular file inside a folder: its size at this moment,
// and exactly that many bytes.
func (o *sender) member(root *os.Root, name string) error {
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil // replaced since the listing
	}
	if err := o.header(name, uint64(fi.Size()), ipmsg.FileRegular, max(fi.ModTime().Unix(), 0)); err != nil {
		return err
	}
	o.m.file()
	return o.content(f, fi.Size())
}

// header writes one record header, refreshing the idle deadline.
func (o *sender) header(name string, size uint64, attr uint32, mtime int64) error {
	o.conn.SetWriteDeadline(time.Now().Add(o.idle))
	h := ipmsg.DirHeader{Name: name, Size: size, Attr: attr, MTime: mtime, CTime: mtime}
	o.hdr = ipmsg.AppendDirHeader(o.hdr[:0], h, o.cs)
	_, err := o.bw.Write(o.hdr)
	return err
}

// content writes n bytes of f after its header: small files through the
// buffer, large ones straight from the file.
func (o *sender) content(f *os.File, n int64) error {
	if n >= directMin {
		if err := o.bw.Flush(); err != nil {
			return err
		}
		return o.direct(f, n)
	}
	o.lr.R, o.lr.N = f, n
	sent, err := o.bw.ReadFrom(&o.lr)
	o.m.add(sent)
	if err == nil && sent < n {
		err = errShrank
	}
	return err
}
