package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
)

// TestFilesBothWays offers empty, one-byte and 100 MiB files, a file with
// spaces and a folder tree with Chinese names, nested and empty folders,
// from alice to bob and from bob to alice: each side accepts into a fresh
// folder and gets the same bytes, the same tree and the same mtimes.
func TestFilesBothWays(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	p := startFilePair(t, "10.81.1.0/24")
	dirs := []struct {
		name     string
		from, to *lantest.Node
		ev       *recorder
		json     bool // accept --json instead of the text report
	}{
		{"alice to bob", p.a, p.b, p.evB, false},
		{"bob to alice", p.b, p.a, p.evA, true},
	}
	for _, d := range dirs {
		t.Run(d.name, func(t *testing.T) {
			src := t.TempDir()
			writeOfferSet(t, src)
			paths := dirEntries(t, src)
			m := offerFiles(t, d.from, d.to, d.ev, "files from "+d.from.Name+" 文件", paths...)
			wantOffered(t, m, paths)

			dest := filepath.Join(t.TempDir(), "收件 "+d.name) // created by accept
			start := time.Now()
			if d.json {
				ts, err := acceptJSON(d.to, m.ID, dest)
				if err != nil {
					t.Fatalf("accept: %v", err)
				}
				if len(ts) != len(paths) {
					t.Fatalf("accept --json reported %d transfers, want %d: %+v", len(ts), len(paths), ts)
				}
				for i, tr := range ts {
					name := filepath.Base(paths[i])
					if tr.Name != name || tr.State != peer.TransferDone || tr.Path != filepath.Join(dest, name) || tr.Error != "" {
						t.Errorf("transfer %d: %+v, want %s done at %s", i, tr, name, filepath.Join(dest, name))
					}
				}
			} else {
				out, err := d.to.CLI("accept", "--to", dest, m.ID)
				if err != nil {
					t.Fatalf("accept: %v", err)
				}
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if len(lines) != len(paths) {
					t.Fatalf("accept printed %q, want one line per file", out)
				}
				for i, line := range lines {
					name := filepath.Base(paths[i])
					if want := name + " done → " + filepath.Join(dest, name) + " ("; !strings.HasPrefix(line, want) {
						t.Errorf("accept line %d is %q, want it to start with %q", i+1, line, want)
					}
				}
			}
			t.Logf("%s: accept took %v", d.name, time.Since(start).Round(time.Millisecond))
			wantSameTree(t, src, dest)
		})
	}
}

// TestFileResumeAfterSenderKilled kills the sender (SIGKILL) in the middle
// of a 300 MiB download. The download fails and keeps its .part; the sender
// comes back on the same data folder, its offers gone with the process, and
// offers the file again: accepting the new offer into the same folder
// continues from the .part, so less than the whole file crosses the link,
// and the result is byte-identical.
func TestFileResumeAfterSenderKilled(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	const size = 300 << 20
	p := startFilePair(t, "10.82.1.0/24")
	src := t.TempDir()
	const name = "续传 big file.bin"
	path := filepath.Join(src, name)
	sum := writeRandom(t, path, size)
	dest := t.TempDir()
	m := offerFiles(t, p.a, p.b, p.evB, "resume me", path)
	// A download is written to "name.<size hex>-<mtime hex>.part", so that
	// only a .part of this very file is ever resumed.
	f := m.Files[0]
	part := filepath.Join(dest, fmt.Sprintf("%s.%x-%x.part", name, f.Size, f.MTime.Unix()))
	final := filepath.Join(dest, name)
	// Slow the sender's link so the kill lands mid-transfer on any machine.
	limitRate(t, p.ha, "800mbit")
	ts, err := acceptJSON(p.b, m.ID, dest, "--no-wait")
	if err != nil || len(ts) != 1 {
		t.Fatalf("accept --no-wait: %v, %+v", err, ts)
	}
	tid := ts[0].ID
	got := waitTransfer(t, p.b, 20*time.Second, tid, "some bytes but not all", func(tr peer.Transfer) bool {
		return tr.State == peer.TransferRunning && tr.Done >= size/4 && tr.Done < size
	})
	t.Logf("killing alice with %d of %d bytes at bob", got.Done, got.Total)
	p.a.Kill()

	failed := waitTransfer(t, p.b, 10*time.Second, tid, "failed", func(tr peer.Transfer) bool { return tr.State.Final() })
	if failed.State != peer.TransferFailed || !strings.Contains(failed.Error, "incomplete") ||
		failed.Done <= 0 || failed.Done >= size {
		t.Fatalf("after the kill bob's transfer is %+v, want failed, incomplete, with some bytes", failed)
	}
	t.Logf("bob's transfer failed: %s", failed.Error)
	fi, err := os.Stat(part)
	if err != nil {
		t.Fatalf("no .part after the failed download: %v", err)
	}
	if fi.Size() != failed.Done {
		t.Errorf(".part holds %d bytes, the transfer reported %d", fi.Size(), failed.Done)
	}
	if _, err := os.Stat(final); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s exists after a failed download (%v)", final, err)
	}

	unlimitRate(t, p.ha)
	a2 := lantest.StartWith(t, p.ha, p.a.Data, "a", "alice", "--downloads", t.TempDir())
	a2.WaitPeers(5*time.Second, "bob")
	if _, err := p.b.CLI("accept", "--to", dest, m.ID); err == nil {
		t.Errorf("accepting the first offer again worked; the restarted sender cannot know it")
	}
	// That attempt must not have touched the .part.
	if fi2, err := os.Stat(part); err != nil || fi2.Size() != fi.Size() {
		t.Fatalf("the .part changed on a refused request: %v, %v", fi2, err)
	}

	m2 := offerFiles(t, a2, p.b, p.evB, "resume me again", path)
	if m2.ID == m.ID {
		t.Fatalf("the new offer has the old ID %s", m.ID)
	}
	rx0 := rxBytes(t, p.hb)
	start := time.Now()
	ts, err = acceptJSON(p.b, m2.ID, dest)
	took := time.Since(start)
	wire := rxBytes(t, p.hb) - rx0
	if err != nil || len(ts) != 1 {
		t.Fatalf("accept of the new offer: %v, %+v", err, ts)
	}
	if tr := ts[0]; tr.State != peer.TransferDone || tr.Path != final || tr.Done != size {
		t.Fatalf("second download: %+v, want done at %s with %d bytes", tr, final, size)
	}
	left := size - fi.Size()
	t.Logf("resumed from %d bytes: %d bytes left, %d received on bob's link in %v", fi.Size(), left, wire, took.Round(time.Millisecond))
	// Headers add a few percent; the whole file again would be far more.
	if wire > left+left/10+1<<20 || wire >= size {
		t.Errorf("bob's link received %d bytes for the second download, want about the %d left after the .part (file %d)", wire, left, size)
	}
	if off := "offset=" + strconv.FormatInt(fi.Size(), 10); !strings.Contains(a2.Log(), off) {
		t.Logf("the restarted sender's log does not mention %s", off)
	}
	if got := hashFile(t, final); got != sum {
		t.Fatalf("resumed file has SHA-256 %s, want %s", got, sum)
	}
	wantNoPart(t, dest)
}

// TestFileCancel cancels a running download from each end: from the
// receiver (the transfer is cancelled, no complete file appears, and the
// offer can still be accepted), and from the sender (the receiver's
// transfer fails and says why).
func TestFileCancel(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	const size = 200 << 20
	p := startFilePair(t, "10.83.1.0/24")
	src := t.TempDir()
	path := filepath.Join(src, "取消 cancel.bin")
	sum := writeRandom(t, path, size)

	t.Run("by receiver", func(t *testing.T) {
		limitRate(t, p.ha, "800mbit")
		m := offerFiles(t, p.a, p.b, p.evB, "cancel me at bob", path)
		dest := t.TempDir()
		acc := startAccept(t, p.b, m.ID, dest)
		tr := waitOfferTransfer(t, p.b, m.ID, peer.Incoming)
		if out, err := p.b.CLI("cancel", tr.ID); err != nil {
			t.Fatalf("cancel %s: %v %s", tr.ID, err, out)
		}
		out, err := acc.wait(t)
		if err == nil {
			t.Errorf("accept exited 0 after its only file was cancelled; it printed %q", out)
		}
		if !strings.Contains(out, "cancelled") {
			t.Errorf("accept printed %q, want the file reported cancelled", out)
		}
		end := waitTransfer(t, p.b, 5*time.Second, tr.ID, "cancelled", func(tr peer.Transfer) bool { return tr.State.Final() })
		if end.State != peer.TransferCancelled || end.Done >= size {
			t.Fatalf("cancelled transfer is %+v, want state cancelled before the end", end)
		}
		if _, err := os.Stat(filepath.Join(dest, filepath.Base(path))); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a complete file appeared after the cancel (%v)", err)
		}
		up := lastUpload(t, p.a)
		up = waitTransfer(t, p.a, 5*time.Second, up.ID, "ended", func(tr peer.Transfer) bool { return tr.State.Final() })
		t.Logf("cancelled at %d of %d bytes; alice's upload %s ended %s (%s)", end.Done, size, up.ID, up.State, up.Error)

		unlimitRate(t, p.ha)
		ts, err := acceptJSON(p.b, m.ID, dest)
		if err != nil || len(ts) != 1 || ts[0].State != peer.TransferDone {
			t.Fatalf("accepting the offer again: %v, %+v", err, ts)
		}
		if got := hashFile(t, ts[0].Path); got != sum || ts[0].Path != filepath.Join(dest, filepath.Base(path)) {
			t.Fatalf("second accept saved %s with SHA-256 %s, want %s", ts[0].Path, got, sum)
		}
		wantNoPart(t, dest)
	})

	t.Run("by sender", func(t *testing.T) {
		limitRate(t, p.ha, "800mbit")
		m := offerFiles(t, p.a, p.b, p.evB, "cancel me at alice", path)
		dest := t.TempDir()
		acc := startAccept(t, p.b, m.ID, dest)
		up := waitOfferTransfer(t, p.a, "", peer.Outgoing)
		if !strings.HasPrefix(up.ID, "u") {
			t.Fatalf("alice's upload has ID %q, want u…", up.ID)
		}
		if out, err := p.a.CLI("cancel", up.ID); err != nil {
			t.Fatalf("cancel %s: %v %s", up.ID, err, out)
		}
		out, err := acc.wait(t)
		if err == nil {
			t.Errorf("accept exited 0 after the sender cancelled; it printed %q", out)
		}
		tr := lastOfferTransfer(t, p.b, m.ID)
		if tr.State != peer.TransferFailed || !strings.Contains(tr.Error, "incomplete") || tr.Done >= size {
			t.Fatalf("bob's transfer after alice cancelled: %+v, want failed as incomplete", tr)
		}
		t.Logf("bob sees: %s; accept printed %q", tr.Error, out)
		if _, err := os.Stat(filepath.Join(dest, filepath.Base(path))); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a complete file appeared after the cancel (%v)", err)
		}
		upEnd := waitTransfer(t, p.a, 5*time.Second, up.ID, "ended", func(tr peer.Transfer) bool { return tr.State.Final() })
		if upEnd.State != peer.TransferCancelled {
			t.Errorf("alice's upload %s ended %s (%s), want cancelled: she cancelled it", upEnd.ID, upEnd.State, upEnd.Error)
		}
		// Cancelling an upload ends the sender's whole offer.
		if out, err := p.b.CLI("accept", "--to", dest, m.ID); err == nil {
			t.Errorf("accepting again after the sender cancelled worked: %q", out)
		}
		if _, err := os.Stat(filepath.Join(dest, filepath.Base(path))); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a complete file appeared after the sender cancelled (%v)", err)
		}
	})
}

// TestFileOfferRefusals offers paths that cannot be sent: the command fails
// at once, names the path, and nothing reaches the peer.
func TestFileOfferRefusals(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	p := startFilePair(t, "10.84.1.0/24")
	good := filepath.Join(t.TempDir(), "好的.txt")
	if err := os.WriteFile(good, []byte("fine"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "不存在 missing.bin")
	cases := []struct {
		name  string
		files []string
		want  []string // in the error output
	}{
		{"missing", []string{missing}, []string{"cannot send", missing, "no such file"}},
		{"missing among good", []string{good, missing}, []string{"cannot send", missing}},
		{"inside a missing folder", []string{filepath.Join(missing, "sub") + "/"}, []string{"cannot send", missing}},
		{"device", []string{"/dev/null"}, []string{"/dev/null", "neither a regular file nor a folder"}},
	}
	before := status(t, p.a).Stats.Sent
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var args []string
			for _, f := range c.files {
				args = append(args, "--file", f)
			}
			args = append(args, "bob", "refused: "+c.name)
			start := time.Now()
			out, err := p.a.CLI("send", args...)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("refusal took %v, want at once", took)
			}
			if err == nil {
				t.Fatalf("send succeeded: %q", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("send printed %q, want it to mention %q", out, w)
				}
			}
			if strings.Contains(out, "delivered") {
				t.Errorf("send printed %q, which reports a delivery", out)
			}
		})
	}
	// A message after the refusals arrives alone: nothing went before it.
	const marker = "after the refusals"
	sendOK(t, p.a, []string{"bob"}, marker)
	p.evB.waitIncoming(t, 5*time.Second, "alice", marker)
	for _, m := range p.evB.incoming() {
		if m.Text != marker {
			t.Errorf("bob received %q (files %v) from a refused send", m.Text, m.Files)
		}
	}
	if sent := status(t, p.a).Stats.Sent - before; sent != 1 {
		t.Errorf("alice counts %d messages sent, want 1 (the marker)", sent)
	}
	for _, m := range history(t, p.a, "bob", 0) {
		if m.Text != marker {
			t.Errorf("alice's history has %q (status %s) from a refused send", m.Text, m.Status)
		}
	}
	if ts := transferList(t, p.a); len(ts) > 0 {
		t.Errorf("alice lists transfers %+v after refused offers", ts)
	}
}

// filePair is two nodes on one segment that know each other.
type filePair struct {
	ha, hb   *netns.Host
	a, b     *lantest.Node // alice and bob
	evA, evB *recorder
}

func startFilePair(t *testing.T, prefix string) *filePair {
	t.Helper()
	n := netns.New(t)
	seg := n.Segment(netip.MustParsePrefix(prefix))
	p := &filePair{ha: seg.AddHost("a"), hb: seg.AddHost("b")}
	// Accepts name a folder; --downloads keeps a stray one out of $HOME.
	p.a = lantest.StartAs(t, p.ha, "a", "alice", "--downloads", t.TempDir())
	p.b = lantest.StartAs(t, p.hb, "b", "bob", "--downloads", t.TempDir())
	p.evA, p.evB = record(t, p.a), record(t, p.b)
	p.a.WaitPeers(5*time.Second, "bob")
	p.b.WaitPeers(5*time.Second, "alice")
	return p
}

// limitRate shapes h's outgoing traffic with a token bucket (tc tbf), so a
// transfer lasts long enough to be interrupted where the test chooses
// however fast the machine. It skips the test without tc or tbf.
func limitRate(t *testing.T, h *netns.Host, rate string) {
	t.Helper()
	if _, err := h.Run("tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "1mb", "latency", "100ms"); err != nil {
		t.Skipf("cannot limit the link's rate: %v", err)
	}
}

func unlimitRate(t *testing.T, h *netns.Host) {
	t.Helper()
	if _, err := h.Run("tc", "qdisc", "del", "dev", "eth0", "root"); err != nil {
		t.Fatal(err)
	}
}

// rxBytes is what h's interface has received so far.
func rxBytes(t *testing.T, h *netns.Host) int64 {
	t.Helper()
	out, err := h.Run("cat", "/sys/class/net/eth0/statistics/rx_bytes")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("rx_bytes %q: %v", out, err)
	}
	return n
}

// offerFiles sends text with paths attached from one node to the other and
// returns the offer as the receiver shows it.
func offerFiles(t testing.TB, from, to *lantest.Node, ev *recorder, text string, paths ...string) peer.Message {
	t.Helper()
	var args []string
	for _, p := range paths {
		args = append(args, "--file", p)
	}
	args = append(args, to.Name, text)
	out, err := from.CLI("send", args...)
	if err != nil {
		t.Fatalf("%s: send files: %v", from.Name, err)
	}
	if want := "delivered to " + to.Name + "\n"; out != want {
		t.Fatalf("%s: send files printed %q, want %q", from.Name, out, want)
	}
	var offer peer.Message
	eventually(t, 5*time.Second, func() (bool, string) {
		for _, m := range ev.incoming() {
			if m.Text == text && m.Nick == from.Name {
				offer = m
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s got no offer %q", to.Name, text)
	})
	if offer.ID == "" || len(offer.Files) != len(paths) {
		t.Fatalf("%s's offer event: %+v, want an ID and %d files", to.Name, offer, len(paths))
	}
	return offer
}

// wantOffered checks the offer lists paths in order with their names,
// sizes (0 for folders) and mtimes.
func wantOffered(t *testing.T, m peer.Message, paths []string) {
	t.Helper()
	for i, f := range m.Files {
		fi, err := os.Stat(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		size := fi.Size()
		if fi.IsDir() {
			size = 0
		}
		if f.Name != fi.Name() || f.Size != size || f.Folder != fi.IsDir() || f.MTime.Unix() != fi.ModTime().Unix() {
			t.Errorf("offered file %d is %+v, want %s of %d bytes (folder %v) from %v", i, f, fi.Name(), size, fi.IsDir(), fi.ModTime())
		}
	}
}

// acceptJSON runs `accept --json` and returns each transfer's last report,
// in the order they first appeared.
func acceptJSON(nd *lantest.Node, offer, dest string, extra ...string) ([]peer.Transfer, error) {
	args := append([]string{"--json", "--to", dest}, extra...)
	out, err := nd.CLI("accept", append(args, offer)...)
	ts, perr := parseTransfers(out)
	return ts, errors.Join(err, perr)
}

// parseTransfers keeps the last of the reports about each transfer.
func parseTransfers(out string) ([]peer.Transfer, error) {
	var ts []peer.Transfer
	for line := range strings.Lines(out) {
		var tr peer.Transfer
		if err := json.Unmarshal([]byte(line), &tr); err != nil {
			return ts, fmt.Errorf("transfer line %q: %w", line, err)
		}
		if i := slices.IndexFunc(ts, func(o peer.Transfer) bool { return o.ID == tr.ID }); i >= 0 {
			ts[i] = tr
		} else {
			ts = append(ts, tr)
		}
	}
	return ts, nil
}

func transferList(t *testing.T, nd *lantest.Node) []peer.Transfer {
	t.Helper()
	out, err := nd.CLI("transfers", "--json")
	if err != nil {
		t.Fatalf("%s: %v", nd.Name, err)
	}
	ts, err := parseTransfers(out)
	if err != nil {
		t.Fatalf("%s: %v", nd.Name, err)
	}
	return ts
}

// waitTransfer polls nd's transfers until transfer id satisfies ok.
func waitTransfer(t *testing.T, nd *lantest.Node, timeout time.Duration, id, what string, ok func(peer.Transfer) bool) peer.Transfer {
	t.Helper()
	var last peer.Transfer
	eventually(t, timeout, func() (bool, string) {
		for _, tr := range transferList(t, nd) {
			if tr.ID == id {
				last = tr
				return ok(tr), fmt.Sprintf("%s's transfer %s is %+v, want %s", nd.Name, id, tr, what)
			}
		}
		return false, fmt.Sprintf("%s has no transfer %s", nd.Name, id)
	})
	return last
}

// waitOfferTransfer waits until nd has a running transfer in direction dir
// (of offer, if set) that has moved some bytes but not all, and returns it.
func waitOfferTransfer(t *testing.T, nd *lantest.Node, offer string, dir peer.Direction) peer.Transfer {
	t.Helper()
	var found peer.Transfer
	eventually(t, 20*time.Second, func() (bool, string) {
		ts := transferList(t, nd)
		for _, tr := range ts {
			if tr.Dir == dir && (offer == "" || tr.Offer == offer) && tr.State == peer.TransferRunning &&
				tr.Done > 0 && tr.Done < tr.Total {
				found = tr
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s lists %+v, want a running %s transfer", nd.Name, ts, dir)
	})
	return found
}

// lastUpload is nd's newest upload.
func lastUpload(t *testing.T, nd *lantest.Node) peer.Transfer {
	t.Helper()
	var last peer.Transfer
	for _, tr := range transferList(t, nd) {
		if tr.Dir == peer.Outgoing {
			last = tr
		}
	}
	if last.ID == "" {
		t.Fatalf("%s has no upload", nd.Name)
	}
	return last
}

// lastOfferTransfer is nd's newest download of offer.
func lastOfferTransfer(t *testing.T, nd *lantest.Node, offer string) peer.Transfer {
	t.Helper()
	var last peer.Transfer
	for _, tr := range transferList(t, nd) {
		if tr.Offer == offer && tr.Dir == peer.Incoming {
			last = tr
		}
	}
	if last.ID == "" {
		t.Fatalf("%s has no download of offer %s", nd.Name, offer)
	}
	return last
}

// bgAccept is an `accept` that waits, running while the test acts.
type bgAccept struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

func startAccept(t *testing.T, nd *lantest.Node, offer, dest string) *bgAccept {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	bg := &bgAccept{done: make(chan error, 1)}
	bg.cmd = exec.CommandContext(ctx, lantest.Binary(t), "accept", "--data", nd.Data, "--to", dest, offer)
	bg.cmd.Stdout, bg.cmd.Stderr = &bg.out, &bg.out
	if err := bg.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { bg.done <- bg.cmd.Wait() }()
	return bg
}

func (bg *bgAccept) wait(t *testing.T) (string, error) {
	t.Helper()
	select {
	case err := <-bg.done:
		return bg.out.String(), err
	case <-time.After(20 * time.Second):
		t.Fatalf("accept still running after 20 s")
		return "", nil
	}
}

// writeOfferSet fills dir with what TestFilesBothWays offers: files of 0
// bytes, 1 byte and 100 MiB, a name with spaces, and a folder tree. Every
// entry gets its own mtime in the past, so keeping it is visible.
func writeOfferSet(t *testing.T, dir string) {
	t.Helper()
	files := []struct {
		path string
		size int64
	}{
		{"empty.bin", 0},
		{"one.bin", 1},
		{"big 100 MiB.bin", 100 << 20},
		{"with spaces 文件 name.txt", 3000},
		{"项目/文档/说明.txt", 0}, // text below
		{"项目/文档/会议 记录 2024.txt", 777},
		{"项目/data/图片.bin", 48 << 10},
		{"项目/data/大一点的.bin", 300 << 10}, // above the folder stream's direct-copy size
		{"项目/data/零.bin", 0},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeRandom(t, p, f.size)
	}
	if err := os.WriteFile(filepath.Join(dir, "项目/文档/说明.txt"), []byte("说明：这是一个测试项目。\nREADME for the test tree.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"项目/空目录", "项目/a/b/c/深处的空目录"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Deepest first, so setting a folder's time is the last change in it.
	var all []string
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil && p != dir {
			all = append(all, p)
		}
		return err
	})
	slices.Reverse(all)
	base := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	for i, p := range all {
		mt := base.Add(time.Duration(i) * 97 * time.Minute)
		if err := os.Chtimes(p, time.Time{}, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// dirEntries lists dir's entries as paths, in name order.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = filepath.Join(dir, e.Name())
	}
	return out
}

// writeRandom writes size random bytes to path and returns their SHA-256.
func writeRandom(t testing.TB, path string, size int64) string {
	t.Helper()
	var seed [32]byte
	rand.Read(seed[:])
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(mrand.NewChaCha8(seed), size), make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashFile(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// treeEntry is what must survive a transfer of one path.
type treeEntry struct {
	Dir   bool
	Size  int64
	SHA   string
	MTime int64 // unix seconds: the protocol carries no more
}

// fileTree describes everything under root by slash-separated relative path.
func fileTree(t *testing.T, root string) map[string]treeEntry {
	t.Helper()
	out := map[string]treeEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := treeEntry{Dir: d.IsDir(), MTime: fi.ModTime().Unix()}
		switch {
		case d.IsDir():
		case fi.Mode().IsRegular():
			e.Size, e.SHA = fi.Size(), hashFile(t, p)
		default:
			return fmt.Errorf("%s is a %v", p, fi.Mode().Type())
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantSameTree wants dest to hold exactly what src holds: names, folders
// (empty ones too), bytes and mtimes.
func wantSameTree(t *testing.T, src, dest string) {
	t.Helper()
	want, got := fileTree(t, src), fileTree(t, dest)
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		w, inSrc := want[k]
		g, inDest := got[k]
		switch {
		case !inDest:
			t.Errorf("%s is missing from the received tree", k)
		case !inSrc:
			t.Errorf("%s was received but never sent", k)
		case w != g:
			t.Errorf("%s: received %+v (mtime %v), sent %+v (mtime %v)", k, g, time.Unix(g.MTime, 0).UTC(), w, time.Unix(w.MTime, 0).UTC())
		}
	}
	if !t.Failed() {
		t.Logf("%d entries identical, names, bytes and mtimes", len(want))
	}
}

func wantNoPart(t *testing.T, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".part") || strings.Contains(e.Name(), " (1)") {
			t.Errorf("%s left in %s", e.Name(), dir)
		}
	}
}

// TestFileAutoAccept: a node told to trust a contact downloads its offers
// into the download folder without anyone accepting.
func TestFileAutoAccept(t *testing.T) {
	netns.Require(t)
	t.Parallel()
	n := netns.New(t)
	seg := n.Segment(netip.MustParsePrefix("10.87.1.0/24"))
	downloads := t.TempDir()
	a := lantest.StartAs(t, seg.AddHost("a"), "a", "alice", "--downloads", t.TempDir())
	b := lantest.StartAs(t, seg.AddHost("b"), "b", "bob", "--downloads", downloads, "--auto-accept", "alice")
	evB := record(t, b)
	a.WaitPeers(5*time.Second, "bob")
	b.WaitPeers(5*time.Second, "alice")

	src := filepath.Join(t.TempDir(), "自动 接收.bin")
	sum := writeRandom(t, src, 3<<20)
	offerFiles(t, a, b, evB, "for you, no click needed", src)
	got := filepath.Join(downloads, filepath.Base(src))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(got); err == nil && hashFile(t, got) == sum {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not arrive by itself in bob's download folder: %v", got, dirEntries(t, downloads))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
