package transfer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lanchat/lanchat/ipmsg"
)

// firstID is the file ID of an offer's first entry. Five digits read as
// hex give at least 0x10000, beyond any ID of the same offer, so a client
// that sends the decimal digits (IDCandidates' second reading) can never be
// served the wrong file.
const firstID = 10000

// offer is what one SENDMSG|FILEATTACHOPT made available, and to whom.
type offer struct {
	to    netip.Addr
	made  time.Time
	files []shared                      // the entry with ID firstID+i is files[i]
	conns map[uint64]context.CancelFunc // requests being served, so Cancel can end them
}

// shared is one offered path with the entry that describes it.
type shared struct {
	path string // absolute, so a later chdir changes nothing
	file ipmsg.File
}

// errNotOffered is why a request is refused; it is only logged, since the
// protocol has no way to tell the peer.
var errNotOffered = errors.New("not offered")

// Share makes paths, regular files or folders, the attachments of the offer
// whose SENDMSG has PacketNo offerNo, for the peer at to alone, and returns
// the entries to list in that offer (ipmsg.AppendFileList), in the order of
// paths. Entries get IDs 10000, 10001, …; their Name is the path's last
// element, Size the file's size (0 for a folder) and MTime its modification
// time. The files are read when requested, so they should stay in place
// until the offer ends: when the peer releases it (Release), the user
// cancels it (Cancel), ServerConfig.MaxAge passes, or the Server is gone.
func (s *Server) Share(offerNo uint64, to netip.Addr, paths []string) ([]ipmsg.File, error) {
	if len(paths) == 0 || len(paths) > ipmsg.MaxFiles {
		return nil, fmt.Errorf("transfer: share: %d paths, want 1 to %d", len(paths), ipmsg.MaxFiles)
	}
	o := &offer{to: plainAddr(to), made: time.Now(), conns: map[uint64]context.CancelFunc{}}
	files := make([]ipmsg.File, len(paths))
	for i, p := range paths {
		sh, err := statShared(p, firstID+uint64(i))
		if err != nil {
			return nil, fmt.Errorf("transfer: share: %w", err)
		}
		o.files = append(o.files, sh)
		files[i] = sh.file
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(o.made)
	if _, dup := s.offers[offerNo]; dup {
		return nil, fmt.Errorf("transfer: share: offer %d is already shared", offerNo)
	}
	s.offers[offerNo] = o
	return files, nil
}

// statShared describes path as an offer entry.
func statShared(path string, id uint64) (shared, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return shared{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return shared{}, err
	}
	if strings.ContainsAny(fi.Name(), `/\`) {
		return shared{}, fmt.Errorf("%s: cannot share a file system root", path)
	}
	f := ipmsg.File{ID: id, Name: fi.Name(), MTime: max(fi.ModTime().Unix(), 0)}
	switch {
	case fi.Mode().IsRegular():
		f.Size, f.Attr = uint64(fi.Size()), ipmsg.FileRegular
	case fi.IsDir():
		f.Attr = ipmsg.FileDir
	default:
		return shared{}, fmt.Errorf("%s is neither a regular file nor a folder", path)
	}
	return shared{path: abs, file: f}, nil
}

// Release ends the offer offerNo if it was made to from: what a
// RELEASEFILES from from asks for. Requests being served run to their end.
func (s *Server) Release(offerNo uint64, from netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.offers[offerNo]; o != nil && o.to == plainAddr(from) {
		delete(s.offers, offerNo)
	}
}

// Cancel ends the offer offerNo and closes every connection serving it; the
// peer sees the transfer cut short.
func (s *Server) Cancel(offerNo uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.offers[offerNo]; o != nil {
		delete(s.offers, offerNo)
		for _, cancel := range o.conns {
			cancel() // only closes the connection (context.AfterFunc), so holding mu is fine
		}
	}
}

// claim finds what req asks for, checks that from may have it, and
// registers cancel under the offer for Cancel. done unregisters it.
func (s *Server) claim(req ipmsg.FileRequest, from netip.Addr, cancel context.CancelFunc) (sh shared, done func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.offers[req.Offer]
	switch {
	case o == nil || s.expired(o, time.Now()):
		return sh, nil, fmt.Errorf("%w: no offer %d", errNotOffered, req.Offer)
	case o.to != from:
		return sh, nil, fmt.Errorf("%w: offer %d was made to %s", errNotOffered, req.Offer, o.to)
	}
	sh, ok := o.lookup(req)
	if !ok {
		return sh, nil, fmt.Errorf("%w: offer %d has no file %#x", errNotOffered, req.Offer, req.ID)
	}
	key := s.nextConn
	s.nextConn++
	o.conns[key] = cancel
	return sh, func() { s.mu.Lock(); delete(o.conns, key); s.mu.Unlock() }, nil
}

// lookup reads the requested ID in hex and then in decimal, as iptux does.
func (o *offer) lookup(req ipmsg.FileRequest) (shared, bool) {
	for _, id := range req.IDCandidates() {
		if id >= firstID && id-firstID < uint64(len(o.files)) {
			return o.files[id-firstID], true
		}
	}
	return shared{}, false
}

func (s *Server) expired(o *offer, now time.Time) bool {
	return s.cfg.MaxAge > 0 && now.Sub(o.made) > s.cfg.MaxAge
}

// expire drops offers past MaxAge. It runs when an offer is added, so the
// registry stays as small as the offers in use without a timer.
func (s *Server) expire(now time.Time) {
	for no, o := range s.offers {
		if s.expired(o, now) {
			delete(s.offers, no)
		}
	}
}

// plainAddr drops what makes one host's address compare unequal to itself:
// the IPv4-in-IPv6 form of a dual-stack socket, and a zone.
func plainAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }
