package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
	"github.com/lanchat/lanchat/transfer"
)

// Limits on what is remembered about transfers.
const (
	// offerMaxAge ends our offers a day after they were made: iptux never
	// releases an offer, and users accept by hand, but not days later.
	offerMaxAge      = 24 * time.Hour
	maxOffers        = 1024 // received offers kept for Accept; the oldest go first
	maxDoneTransfers = 256  // finished transfers kept for Transfers
	// memberRetries is how often a relay member's cut transfer resumes.
	memberRetries = 5
)

// ErrUnknownOffer means Accept or Decline got an ID that is no offer.
var ErrUnknownOffer = errors.New("unknown offer")

// offerRef is a received offer, kept so the user can accept it later:
// iptux and IP Messenger users often accept minutes after the offer.
type offerRef struct {
	id      string
	from    netip.AddrPort
	no      uint64
	noRaw   []byte // no as the sender wrote it; RELEASEFILES echoes it
	peer    discovery.Peer
	files   []ipmsg.File
	utf8    bool // the offer had UTF8OPT: ask for UTF-8 names back
	cs      ipmsg.Charset
	arrived time.Time
	member  bool // a relay member's: fetched over libp2p, resumed if cut
}

// files holds the transfer side of a node.
type files struct {
	srv *transfer.Server
	cli *transfer.Client

	mu        sync.Mutex
	offers    *fifoMap[string, *offerRef] // received, by message ID
	transfers map[string]*xfer
	done      []string // finished transfer IDs, oldest first
	seq       int
}

// xfer is a transfer and how to stop it.
type xfer struct {
	t         Transfer
	cancel    context.CancelFunc
	cancelled bool // by our user: an upload's end is then "cancelled", not a failure
}

func (n *Node) newFiles() *files {
	f := &files{offers: newFIFOMap[string, *offerRef](maxOffers), transfers: map[string]*xfer{}}
	f.srv = transfer.NewServer(transfer.ServerConfig{
		Logger:   n.log.With("part", "files"),
		Charset:  n.charsetFor,
		OnUpload: n.onUpload,
		MaxAge:   offerMaxAge,
	})
	cc := transfer.ClientConfig{Logger: n.log.With("part", "files"), Dial: n.dialMember}
	if a, err := netip.ParseAddr(n.cfg.Listen); err == nil && !a.IsUnspecified() {
		cc.LocalAddr = a // IP Messenger serves only the address it offered to
	}
	f.cli = transfer.NewClient(cc)
	return f
}

// charsetFor is the charset of folder-stream names for the peer at a.
func (n *Node) charsetFor(a netip.Addr) ipmsg.Charset {
	for _, p := range n.disc.Roster().List() {
		if p.Addr.Addr() == a {
			cs, _ := n.sendCharset(p)
			return cs
		}
	}
	return n.cfg.Legacy
}

// share registers paths as the offer with packet number no to p and
// returns the file list bytes for the SENDMSG.
func (n *Node) share(no uint64, p discovery.Peer, cs ipmsg.Charset, paths []string) ([]byte, []File, error) {
	list, err := n.files.srv.Share(no, p.Addr.Addr(), paths)
	if err != nil {
		return nil, nil, err
	}
	return ipmsg.AppendFileList(nil, list, cs), publicFiles(list), nil
}

func publicFiles(list []ipmsg.File) []File {
	out := make([]File, len(list))
	for i, f := range list {
		out[i] = File{ID: f.ID, Name: f.Name, Size: int64(f.Size), Folder: f.Type() == ipmsg.FileDir,
			MTime: time.Unix(f.MTime, 0)}
	}
	return out
}

// onOffer remembers the attachments of a received SENDMSG and returns them
// for the message. A list that does not parse is reported, not fatal: the
// text still arrives.
func (n *Node) onOffer(p ipmsg.Packet, from netip.AddrPort, peer discovery.Peer, id string) []File {
	utf8 := p.Command.Has(ipmsg.UTF8Opt)
	cs := n.cfg.Legacy
	if utf8 {
		cs = ipmsg.UTF8
	}
	list, err := ipmsg.ParseFileList(p.Section(1), cs)
	if err != nil || len(list) == 0 {
		n.log.Info("unreadable attachment list", "from", from, "err", err)
		return nil
	}
	return n.keepOffer(&offerRef{id: id, from: from, no: p.No, noRaw: bytes.Clone(p.NoRaw), peer: peer, files: list,
		utf8: utf8, cs: cs, arrived: time.Now()})
}

// keepOffer remembers a received offer until it is accepted, declined or
// pushed out by newer ones, and returns its files for the message.
func (n *Node) keepOffer(ref *offerRef) []File {
	f := n.files
	f.mu.Lock()
	f.offers.put(ref.id, ref)
	f.mu.Unlock()
	return publicFiles(ref.files)
}

// autoAccept reports whether offers from p are accepted without asking.
func (n *Node) autoAccept(p discovery.Peer) bool {
	return slices.ContainsFunc(n.cfg.AutoAccept, func(s string) bool {
		return s == p.Key || s == p.Nick || s == p.User+"@"+p.Host || s == "*"
	})
}

// Accept downloads the files of an offer into dir (the download folder
// when empty), one after another in the background. It returns the
// transfers, queued; TransferEvents report their progress.
func (n *Node) Accept(offerID, dir string) ([]Transfer, error) {
	f := n.files
	f.mu.Lock()
	ref, ok := f.offers.get(offerID)
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (offers are kept until the node restarts)", ErrUnknownOffer, offerID)
	}
	if dir == "" {
		dir = n.cfg.Downloads
	}
	ctx, cancel := context.WithCancel(context.Background())
	xs := make([]*xfer, len(ref.files))
	for i, file := range ref.files {
		xs[i] = f.add(Transfer{Offer: offerID, Peer: ref.peer.Key, Nick: ref.peer.Nick, Dir: Incoming,
			Name: file.Name, Folder: file.Type() == ipmsg.FileDir, Total: int64(file.Size), State: TransferQueued}, cancel)
	}
	out := make([]Transfer, len(xs))
	for i, x := range xs { // before the downloads start to change them
		out[i] = x.t
	}
	n.wg.Add(2)
	go func() { // downloads end with the node
		defer n.wg.Done()
		select {
		case <-n.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer n.wg.Done()
		defer cancel()
		for i, file := range ref.files {
			n.fetch(ctx, ref, file, dir, xs[i])
		}
	}()
	return out, nil
}

// add registers a new transfer.
func (f *files) add(t Transfer, cancel context.CancelFunc) *xfer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	t.ID = "t" + strconv.Itoa(f.seq)
	x := &xfer{t: t, cancel: cancel}
	f.transfers[t.ID] = x
	return x
}

// fetch downloads one file of an offer.
func (n *Node) fetch(ctx context.Context, ref *offerRef, file ipmsg.File, dir string, x *xfer) {
	if ctx.Err() != nil {
		n.update(x, func(t *Transfer) { t.State, t.Error = TransferCancelled, "cancelled" })
		return
	}
	n.update(x, func(t *Transfer) { t.State = TransferRunning })
	hdr := ipmsg.Packet{No: n.nos.Next(),
		User: ref.cs.Encode(ipmsg.HeaderName(n.cfg.User)), Host: ref.cs.Encode(ipmsg.HeaderName(n.cfg.Host))}
	if ref.utf8 {
		hdr.Command = ipmsg.UTF8Opt
	}
	req := transfer.Request{
		From: ref.from, Header: hdr, Offer: ref.no, File: file, Charset: ref.cs, DestDir: dir,
		Resume:   ref.peer.Client == ipmsg.ClientLanchat,
		Progress: func(p transfer.Progress) { n.progress(x, p) },
	}
	path, err := n.files.cli.Fetch(ctx, req)
	// A member's stream breaks when a relay restarts, a circuit ends, or a
	// transfer moves to a new direct connection: resume it, a few times.
	for try := 1; err != nil && ref.member && ctx.Err() == nil && try <= memberRetries; try++ {
		n.log.Info("file transfer cut; resuming", "file", file.Name, "try", try, "err", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
		path, err = n.files.cli.Fetch(ctx, req)
	}
	n.update(x, func(t *Transfer) {
		t.Path = path
		switch {
		case err == nil:
			t.State = TransferDone
		case ctx.Err() != nil:
			t.State, t.Error = TransferCancelled, "cancelled"
		default:
			t.State, t.Error = TransferFailed, err.Error()
		}
	})
}

// progress records a report; the end state is set by fetch, which knows
// the outcome.
func (n *Node) progress(x *xfer, p transfer.Progress) {
	n.update(x, func(t *Transfer) {
		t.Done, t.Files, t.Rate, t.ETA = p.Done, p.Files, p.Rate, p.ETA
		if p.Total > 0 {
			t.Total = p.Total
		}
	})
}

// update changes a transfer and reports it.
func (n *Node) update(x *xfer, change func(*Transfer)) {
	f := n.files
	f.mu.Lock()
	change(&x.t)
	t := x.t
	if t.State.Final() {
		f.retire(t.ID)
	}
	f.mu.Unlock()
	n.bus.publish(TransferEvent{Transfer: t})
}

// retire keeps only the newest finished transfers.
func (f *files) retire(id string) {
	f.done = append(f.done, id)
	if len(f.done) > maxDoneTransfers {
		delete(f.transfers, f.done[0])
		f.done = f.done[1:]
	}
}

// onUpload tracks a peer fetching one of our files.
func (n *Node) onUpload(u transfer.Upload) {
	id := fmt.Sprintf("u%d-%d-%s", u.Offer, u.ID, u.To)
	f := n.files
	f.mu.Lock()
	x, ok := f.transfers[id]
	if !ok {
		offerNo := u.Offer
		x = &xfer{t: Transfer{ID: id, Offer: "o" + strconv.FormatUint(offerNo, 10), Dir: Outgoing,
			Name: u.Name, Peer: u.To.String()}, cancel: func() { f.srv.Cancel(offerNo) }}
		if p, ok := n.contactByIP(u.To); ok {
			x.t.Peer, x.t.Nick = p.Key, p.Nick
		}
		f.transfers[id] = x
	}
	f.mu.Unlock()
	n.update(x, func(t *Transfer) {
		t.Done, t.Total, t.Files, t.Rate, t.ETA = u.Done, u.Total, u.Files, u.Rate, u.ETA
		t.State = TransferRunning
		switch {
		case !u.Final:
		case x.cancelled:
			t.State, t.Error = TransferCancelled, "cancelled"
		case u.Err != nil:
			t.State, t.Error = TransferFailed, u.Err.Error()
		default:
			t.State = TransferDone
		}
	})
}

func (n *Node) contactByIP(a netip.Addr) (discovery.Peer, bool) {
	if m, ok := n.memberByStandIn(a); ok {
		return discovery.Peer{Key: memberContact(m).Key, Nick: m.Nick}, true
	}
	for _, p := range n.disc.Roster().List() {
		if p.Addr.Addr() == a {
			return p, true
		}
	}
	return discovery.Peer{}, false
}

// Transfers returns the transfers in progress and the latest finished ones.
func (n *Node) Transfers() []Transfer {
	f := n.files
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Transfer, 0, len(f.transfers))
	for _, x := range f.transfers {
		out = append(out, x.t)
	}
	slices.SortFunc(out, func(a, b Transfer) int { return compareIDs(a.ID, b.ID) })
	return out
}

func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// Cancel stops a transfer: a download of ours (and the rest of its
// offer), or a peer's download from us (which ends the whole offer).
func (n *Node) Cancel(id string) error {
	f := n.files
	f.mu.Lock()
	x, ok := f.transfers[id]
	if ok {
		x.cancelled = true
	}
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("no transfer %q", id)
	}
	x.cancel()
	return nil
}

// Decline gives up an offer we will not download and tells the sender
// (RELEASEFILES), so it can stop holding the files.
func (n *Node) Decline(offerID string) error {
	f := n.files
	f.mu.Lock()
	ref, ok := f.offers.take(offerID)
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownOffer, offerID)
	}
	if ref.member {
		return n.releaseMember(ref)
	}
	pkt, _ := n.packet(ipmsg.ReleaseFiles, ref.cs, append(bytes.Clone(ref.noRaw), 0))
	return n.send(pkt, ref.from)
}

// onRelease handles RELEASEFILES: the peer gave up our offer.
func (n *Node) onRelease(p ipmsg.Packet, from netip.AddrPort) {
	if no, err := p.NoExtra(); err == nil {
		n.files.srv.Release(no, from.Addr())
	}
}

// absPaths makes offered paths absolute and checks they exist, so a
// mistake is reported at once rather than when the peer asks.
func absPaths(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(a); err != nil {
			return nil, fmt.Errorf("cannot send %s: %w", p, err)
		}
		out[i] = a
	}
	return out, nil
}
