//go:build linux

package interop

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
)

// IPMsg commands of file transfer, as iptux 0.8.3 uses them.
const (
	optFileAttach = 0x200000
	modeGetFile   = 0x60
	modeGetDir    = 0x62
)

// TestIptuxFiles moves files and folders between lanchat and a real iptux
// 0.8.3, driving iptux's chat window with xdotool:
//
//   - iptux → lanchat: Ctrl+S and Ctrl+D in the chat window attach a file
//     and a folder through GTK's file chooser (Ctrl+L, the path, Return),
//     Return sends them as one offer; lanchat accepts and downloads both.
//   - lanchat → iptux: `lanchat send --file`; iptux acknowledges and lists
//     the file under "Files to be received"; the test clicks Accept and
//     confirms the folder dialog, and iptux downloads the file.
//
// Names are Chinese so the cases check both charsets iptux may pick for
// lanchat (see TestIptux): UTF-8 for the ASCII nick, GB18030 for the
// Chinese one. The TCP requests (GETFILEDATA, GETDIRFILES), which iptux
// does not log, are captured from iptux's interface.
func TestIptuxFiles(t *testing.T) {
	requireIptux(t)
	lantest.Binary(t)
	cases := []struct {
		name, prefix string
		nick         string
		charset      string // iptux's choice for lanchat
	}{
		{"ascii-nick", "10.241.4.0/24", "xiaoming", "utf-8"},
		{"chinese-nick", "10.241.5.0/24", "小明", "gbk"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			p := newPair(t, tc.prefix, tc.nick)
			sniff := sniffRequests(t, p.tux.Host)
			t.Cleanup(func() { sniff.capture(t) })
			events := p.lc.Events()
			c := p.waitContact(t, 5*time.Second)

			// A message opens iptux's chat window with lanchat (OpenChat).
			if out, err := p.lc.CLI("send", c.Key, "文件测试"); err != nil {
				t.Fatalf("lanchat send: %v %s", err, out)
			}
			p.tux.WaitChat(3*time.Second, 1)

			t.Run("iptux-to-lanchat", func(t *testing.T) { iptuxToLanchat(t, p, events, c, sniff, tc.charset) })
			t.Run("lanchat-to-iptux", func(t *testing.T) { lanchatToIptux(t, p, c, sniff, tc.charset) })
			t.Logf("%s: done in %v", tc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// encodeName is name as iptux puts it on the wire for lanchat.
func encodeName(t *testing.T, name, charset string) []byte {
	if charset == "utf-8" {
		return []byte(name)
	}
	gbk := map[string]string{ // GBK of the names below, by hand: no codec in the test
		"报告-测试.txt": "\xb1\xa8\xb8\xe6-\xb2\xe2\xca\xd4.txt",
		"资料夹":       "\xd7\xca\xc1\xcf\xbc\xd0",
	}
	b, ok := gbk[name]
	if !ok {
		t.Fatalf("no GBK form of %q", name)
	}
	return []byte(b)
}

func iptuxToLanchat(t *testing.T, p *pair, events <-chan lantest.Event, c peer.Contact, sniff *sniffer, charset string) {
	src := t.TempDir()
	file := filepath.Join(src, "报告-测试.txt")
	mtime := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	writeRandom(t, file, 100_000, mtime)
	// The folder is alone in its parent: see Attach.
	folder := filepath.Join(src, "parent", "资料夹")
	writeRandom(t, filepath.Join(folder, "a.txt"), 6, mtime)
	writeRandom(t, filepath.Join(folder, "子目录", "数据.bin"), 70_000, mtime.Add(time.Hour))
	writeRandom(t, filepath.Join(folder, "子目录", "empty"), 0, mtime)

	p.tux.Attach(p.us.Addr(), file, false)
	p.tux.Attach(p.us.Addr(), folder, true)
	p.tux.SendTyped(p.us.Addr())

	// The offer: one SENDMSG|FILEATTACHOPT, empty text, file then folder.
	_, offer := p.tux.WaitDatagram(5*time.Second, "iptux's file offer", func(d datagram, h header) bool {
		return d.Sent && d.Peer == p.us && h.Mode() == modeSendMsg && h.Command&optFileAttach != 0
	})
	if offer.Command != 0x200020 {
		t.Errorf("iptux's offer has command %#x, want 0x200020", offer.Command)
	}
	for _, n := range []string{"报告-测试.txt", "资料夹"} {
		if enc := encodeName(t, n, charset); !bytes.Contains(offer.Extra, append(append([]byte(":"), enc...), ':')) {
			t.Errorf("iptux's offer %s lacks %s in %s", quoteBytes(offer.Extra), n, charset)
		}
	}

	m := waitOffer(t, events, 5*time.Second)
	if m.Peer != c.Key {
		t.Errorf("offer from %s, want %s", m.Peer, c.Key)
	}
	var names []string
	for _, f := range m.Files {
		names = append(names, fmt.Sprintf("%s folder=%v", f.Name, f.Folder))
	}
	want := []string{"报告-测试.txt folder=false", "资料夹 folder=true"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("lanchat shows the offer %s as %q, want %q", quoteBytes(offer.Extra), names, want)
	}
	// iptux 0.8.3 offers a file's ctime as its mtime (here when the test
	// wrote it, not the mtime it set), so lanchat can only keep that.
	offered := offerMTime(t, offer.Extra, 0)
	if f := m.Files[0]; f.Size != 100_000 || !f.MTime.Equal(offered) {
		t.Errorf("lanchat shows %s with size %d mtime %v, want 100000 %v as offered", f.Name, f.Size, f.MTime, offered)
	}

	dl := t.TempDir()
	out, err := p.lc.CLI("accept", "--to", dl, "--json", m.ID)
	if err != nil {
		t.Fatalf("lanchat accept: %v", err)
	}
	final := map[string]peer.Transfer{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var tr peer.Transfer
		if err := json.Unmarshal([]byte(line), &tr); err != nil {
			t.Fatalf("accept output %q: %v", line, err)
		}
		final[tr.Name] = tr
	}
	for _, n := range []string{"报告-测试.txt", "资料夹"} {
		if tr := final[n]; tr.State != peer.TransferDone || tr.Path != filepath.Join(dl, n) {
			t.Errorf("transfer of %s ended %q at %q (%s), want done at %q", n, tr.State, tr.Path, tr.Error, filepath.Join(dl, n))
		}
	}
	sameFile(t, file, filepath.Join(dl, "报告-测试.txt"), offered)
	sameTree(t, folder, filepath.Join(dl, "资料夹"))

	// lanchat's requests, as they reached iptux.
	offerNo := offer.PacketNo
	reqs := sniff.requests(p.them.Addr(), 2)
	var modes []uint32
	for _, r := range reqs {
		h, ok := parseHeader(bytes.TrimRight(r.Data, "\x00"))
		if !ok {
			t.Errorf("lanchat's TCP request %s does not parse", quoteBytes(r.Data))
			continue
		}
		modes = append(modes, h.Mode())
		var no, id uint64
		if _, err := fmt.Sscanf(string(h.Extra), "%x:%x:", &no, &id); err != nil || fmt.Sprint(no) != offerNo {
			t.Errorf("lanchat's request %s: want offer %s (hex %x) first", quoteBytes(r.Data), offerNo, no)
		}
	}
	if fmt.Sprint(modes) != fmt.Sprint([]uint32{modeGetFile, modeGetDir}) && fmt.Sprint(modes) != fmt.Sprint([]uint32{modeGetDir, modeGetFile}) {
		t.Errorf("lanchat's TCP requests have modes %#x, want one GETFILEDATA and one GETDIRFILES", modes)
	}
}

func lanchatToIptux(t *testing.T, p *pair, c peer.Contact, sniff *sniffer, charset string) {
	src := t.TempDir()
	file := filepath.Join(src, "发送-文件.bin")
	writeRandom(t, file, 200_000, time.Date(2024, 2, 10, 8, 0, 0, 0, time.UTC))
	out, err := p.lc.CLI("send", "--file", file, c.Key, "给你一个文件")
	if err != nil || !strings.HasPrefix(out, "delivered to") {
		t.Fatalf("lanchat send --file: %v %s", err, out)
	}
	_, offer := p.tux.WaitDatagram(3*time.Second, "lanchat's file offer", func(d datagram, h header) bool {
		return !d.Sent && d.Peer == p.us && h.Mode() == modeSendMsg && h.Command&optFileAttach != 0
	})
	p.tux.WaitDatagram(3*time.Second, "iptux's RECVMSG for it", func(d datagram, h header) bool {
		return d.Sent && d.Peer == p.us && h.Mode() == modeRecvMsg && string(bytes.TrimRight(h.Extra, "\x00")) == offer.PacketNo
	})

	saved := p.tux.AcceptFiles(p.us.Addr(), 10*time.Second)
	if len(saved) != 1 || filepath.Base(saved[0]) != "发送-文件.bin" {
		t.Fatalf("iptux saved %q, want one 发送-文件.bin (offer %s)", saved, quoteBytes(offer.Extra))
	}
	sameFile(t, file, saved[0], time.Time{})

	reqs := sniff.requests(p.us.Addr(), 1)
	if len(reqs) == 0 {
		t.Fatal("saw no TCP request from iptux")
	}
	h, ok := parseHeader(bytes.TrimRight(reqs[0].Data, "\x00"))
	var no, id, off uint64
	if ok {
		_, err = fmt.Sscanf(string(h.Extra), "%x:%x:%x", &no, &id, &off)
	}
	if !ok || err != nil || h.Mode() != modeGetFile || fmt.Sprint(no) != offer.PacketNo || off != 0 {
		t.Errorf("iptux's request %s: want GETFILEDATA for offer %s (hex), offset 0", quoteBytes(reqs[0].Data), offer.PacketNo)
	}
	t.Logf("iptux's GETFILEDATA: %s", quoteBytes(reqs[0].Data))
}

// offerMTime is the mtime of entry i of an offer's file list:
// "\x00id:name:size:mtime:attr:\a…".
func offerMTime(t *testing.T, extra []byte, i int) time.Time {
	t.Helper()
	_, list, _ := bytes.Cut(extra, []byte{0})
	entries := bytes.Split(bytes.TrimRight(list, "\x00"), []byte("\a"))
	if i < len(entries) {
		f := bytes.Split(bytes.TrimPrefix(entries[i], []byte(":")), []byte(":"))
		var sec int64
		if len(f) >= 4 {
			if _, err := fmt.Sscanf(string(f[3]), "%x", &sec); err == nil {
				return time.Unix(sec, 0).UTC()
			}
		}
	}
	t.Fatalf("no mtime in entry %d of the offer %s", i, quoteBytes(extra))
	return time.Time{}
}

func waitOffer(t *testing.T, events <-chan lantest.Event, timeout time.Duration) peer.Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("lanchat's event stream ended")
			}
			if m, ok := e.Message(); ok && m.Dir == peer.Incoming && len(m.Files) > 0 {
				return m
			}
		case <-timer.C:
			t.Fatalf("no file offer reached lanchat within %v", timeout)
		}
	}
}

func writeRandom(t *testing.T, path string, size int, mtime time.Time) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// sameFile checks got against want: content (SHA-256) and mtime to the
// second, which is want's unless mtime is given.
func sameFile(t *testing.T, want, got string, mtime time.Time) {
	t.Helper()
	wb, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := os.ReadFile(got)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if sha256.Sum256(wb) != sha256.Sum256(gb) {
		t.Errorf("%s: %d bytes, SHA-256 %x; sent %d bytes, %x", got, len(gb), sha256.Sum256(gb), len(wb), sha256.Sum256(wb))
	}
	if mtime.IsZero() {
		wi, _ := os.Stat(want)
		mtime = wi.ModTime()
	}
	gi, _ := os.Stat(got)
	if gi != nil && !gi.ModTime().Truncate(time.Second).Equal(mtime.Truncate(time.Second)) {
		t.Errorf("%s: mtime %v, want %v", got, gi.ModTime(), mtime)
	}
}

// sameTree checks that got has the files and folders of want, with equal content.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	list := func(root string) map[string]string {
		m := map[string]string{}
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				m["error"] = err.Error()
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			if d.IsDir() {
				m[rel] = "dir"
				return nil
			}
			b, err := os.ReadFile(path)
			m[rel] = fmt.Sprintf("%d bytes %x %v", len(b), sha256.Sum256(b), err)
			return nil
		})
		return m
	}
	w, g := list(want), list(got)
	if fmt.Sprint(w) != fmt.Sprint(g) {
		t.Errorf("folder %s differs from what was sent:\n got %v\nwant %v", got, g, w)
	}
}

// chatWindow is the id of iptux's open chat window with peer.
func (ip *iptux) chatWindow(peer netip.Addr) string {
	ip.t.Helper()
	title := `^Talk with .* IP:` + regexp.QuoteMeta(peer.String()) + `$`
	return ip.xdotool(10*time.Second, "search", "--sync", "--limit", "1", "--name", title)
}

// Attach adds a file (Ctrl+S) or folder (Ctrl+D) to the chat window's
// enclosures through GTK's chooser: Ctrl+L opens its location entry, where
// the path is typed, and Return chooses it.
//
// In the folder chooser Return on a typed folder enters it and chooses the
// first subfolder selected there, not the folder itself, so for a folder
// the test types its parent, which must hold nothing else.
func (ip *iptux) Attach(peer netip.Addr, path string, folder bool) {
	ip.t.Helper()
	key, title := "ctrl+s", "^Choose enclosure files$"
	if folder {
		key, title = "ctrl+d", "^Choose enclosure folders$"
		entries, err := os.ReadDir(filepath.Dir(path))
		if err != nil || len(entries) != 1 {
			ip.t.Fatalf("Attach: the parent of %s must hold only it: %v %v", path, entries, err)
		}
		path = filepath.Dir(path)
	}
	ip.xdotool(5*time.Second, "windowfocus", "--sync", ip.chatWindow(peer))
	ip.xdotool(5*time.Second, "key", key)
	dlg := ip.xdotool(10*time.Second, "search", "--sync", "--limit", "1", "--name", title)
	ip.xdotool(5*time.Second, "windowfocus", "--sync", dlg)
	ip.xdotool(5*time.Second, "key", "ctrl+l")
	time.Sleep(200 * time.Millisecond) // the location entry appears
	ip.xdotool(20*time.Second, append(append([]string{"key", "--delay", "15"}, pathKeys(path)...), "Return")...)
	deadline := time.Now().Add(5 * time.Second)
	for ip.hasWindow(title) {
		if time.Now().After(deadline) {
			ip.t.Fatalf("iptux's chooser %q did not close after choosing %s", title, path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SendTyped presses Return in the chat window's input: iptux sends the
// enclosures (and the text, if any).
func (ip *iptux) SendTyped(peer netip.Addr) {
	ip.t.Helper()
	ip.xdotool(5*time.Second, "windowfocus", "--sync", ip.chatWindow(peer))
	ip.xdotool(5*time.Second, "key", "Return")
}

func (ip *iptux) hasWindow(title string) bool {
	cmd := ip.Host.Command(ip.t.Context(), "xdotool", "search", "--name", title)
	cmd.Env = ip.env()
	out, _ := cmd.Output()
	return len(bytes.TrimSpace(out)) > 0
}

// AcceptFiles accepts the files listed under "Files to be received" in the
// chat window with peer and confirms the folder dialog with Return. It
// returns the paths iptux says it saved, once every listed file is in.
//
// The Accept button has no key binding and the window no window manager to
// tab through reliably, so the test moves the window to the screen's
// corner, widens it so the button is where a screenshot showed it, and
// clicks it.
func (ip *iptux) AcceptFiles(peer netip.Addr, timeout time.Duration) []string {
	ip.t.Helper()
	win := ip.chatWindow(peer)
	ip.xdotool(5*time.Second, "windowmove", "--sync", win, "0", "0")
	ip.xdotool(5*time.Second, "windowsize", "--sync", win, "1000", "600")
	time.Sleep(300 * time.Millisecond) // relayout
	const title = "^Please select a folder to save files.$"
	ip.xdotool(5*time.Second, "mousemove", "--window", win, "985", "77", "click", "1")
	dlg := ip.xdotool(10*time.Second, "search", "--sync", "--limit", "1", "--name", title)
	ip.xdotool(5*time.Second, "windowfocus", "--sync", dlg)
	ip.xdotool(5*time.Second, "key", "Return")
	deadline := time.Now().Add(timeout)
	for {
		m := savedLine.FindAllStringSubmatch(ip.Log(), -1)
		if len(m) > 0 {
			var out []string
			for _, s := range m {
				out = append(out, s[1])
			}
			return out
		}
		if time.Now().After(deadline) {
			ip.t.Fatalf("iptux saved no file within %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var savedLine = regexp.MustCompile(`RecvRegularFile:Receive the file "(.*)" from .* successfully!`)

// pathKeys spells a path as key presses: ASCII by keysym, the rest with
// GTK's Ctrl+Shift+U entry (see unicodeKeys).
func pathKeys(path string) []string {
	var keys []string
	for _, r := range path {
		switch {
		case r == '/':
			keys = append(keys, "slash")
		case r == '-':
			keys = append(keys, "minus")
		case r == '.':
			keys = append(keys, "period")
		case r == '_':
			keys = append(keys, "underscore")
		case r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			keys = append(keys, string(r))
		default:
			keys = append(keys, unicodeKeys(string(r))...)
		}
	}
	return keys
}

// sniffer records the first payload of every TCP connection to port 2425
// seen on a host's interface: the file requests, which iptux does not log.
type sniffer struct {
	fd   int
	mu   sync.Mutex
	seen map[netip.AddrPort]bool
	reqs []tcpRequest
	done chan struct{}
}

type tcpRequest struct {
	From, To netip.AddrPort
	Data     []byte
}

func sniffRequests(t *testing.T, h *netns.Host) *sniffer {
	t.Helper()
	s := &sniffer{seen: map[netip.AddrPort]bool{}, done: make(chan struct{})}
	err := h.Do(func() error {
		// ETH_P_ALL: a socket bound to one protocol sees only incoming frames.
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(htons(syscall.ETH_P_ALL)))
		if err != nil {
			return err
		}
		s.fd = fd
		tv := syscall.Timeval{Usec: 100_000}
		return syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		t.Fatalf("packet socket in %s: %v", h.NS, err)
	}
	stop := make(chan struct{})
	go s.run(stop)
	t.Cleanup(func() { close(stop); <-s.done; syscall.Close(s.fd) })
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *sniffer) run(stop chan struct{}) {
	defer close(s.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, _, err := syscall.Recvfrom(s.fd, buf, 0)
		if err != nil || n < 20 { // ARP and IPv6 fail the version check below
			continue
		}
		ip := buf[:n]
		ihl := int(ip[0]&0x0f) * 4
		if ip[0]>>4 != 4 || ip[9] != syscall.IPPROTO_TCP || n < ihl+20 {
			continue
		}
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if total < n {
			ip = ip[:total]
		}
		tcp := ip[ihl:]
		doff := int(tcp[12]>>4) * 4
		if len(tcp) <= doff || binary.BigEndian.Uint16(tcp[2:4]) != 2425 {
			continue
		}
		src, _ := netip.AddrFromSlice(ip[12:16])
		dst, _ := netip.AddrFromSlice(ip[16:20])
		from := netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:2]))
		s.mu.Lock()
		if !s.seen[from] { // a retransmission or a request's second segment is not a new request
			s.seen[from] = true
			s.reqs = append(s.reqs, tcpRequest{From: from, To: netip.AddrPortFrom(dst, 2425), Data: bytes.Clone(tcp[doff:])})
		}
		s.mu.Unlock()
	}
}

// requests waits up to 3 s until n requests went to the host to and returns them.
func (s *sniffer) requests(to netip.Addr, n int) []tcpRequest {
	deadline := time.Now().Add(3 * time.Second)
	for {
		var out []tcpRequest
		s.mu.Lock()
		for _, r := range s.reqs {
			if r.To.Addr() == to {
				out = append(out, r)
			}
		}
		s.mu.Unlock()
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// capture logs the TCP requests and appends them to -iptux.captures, like pair.capture.
func (s *sniffer) capture(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, r := range s.reqs {
		h, _ := parseHeader(r.Data)
		fmt.Fprintf(&b, "# %s: TCP %v → %v, command %#x\n%s\n", t.Name(), r.From, r.To, h.Command, quoteBytes(r.Data))
	}
	t.Logf("TCP requests:\n%s", b.String())
	if *capturesOut == "" || b.Len() == 0 {
		return
	}
	f, err := os.OpenFile(*capturesOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	f.WriteString(b.String())
}
