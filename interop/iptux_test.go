//go:build linux

// Package interop runs lanchat against the real clients it must talk to.
// These tests start the client itself (iptux from Debian, headless under
// Xvfb) in a network namespace, so they need root and the packages in
// scripts/debian-deps.sh; otherwise they skip.
package interop

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/lantest"
	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
)

var capturesOut = flag.String("iptux.captures", "", "append every datagram between iptux and lanchat to this file, Go-quoted")

// iptux's identity in every test. Chinese on purpose: how its nick reaches
// us shows which charset iptux picked for us.
const (
	tuxNick  = "企鹅"
	tuxGroup = "研发部"
)

// The same in GBK, as iptux sends them once it has decided we are GB18030.
var (
	gbkTuxNick  = []byte("\xc6\xf3\xb6\xec")
	gbkTuxGroup = []byte("\xd1\xd0\xb7\xa2\xb2\xbf")
)

// pair is one iptux and one lanchat on a segment of their own.
type pair struct {
	tux  *iptux
	lc   *lantest.Node
	us   netip.AddrPort // lanchat
	them netip.AddrPort // iptux
}

func newPair(t *testing.T, prefix, nick string) *pair {
	t.Helper()
	n := netns.New(t)
	seg := n.Segment(netip.MustParsePrefix(prefix))
	ih, lh := seg.AddHost("iptux"), seg.AddHost("lanchat") // lantest makes the host name lanchat's user
	tux := startIptux(t, ih, iptuxConfig{Nick: tuxNick, Group: tuxGroup, OpenChat: true, EnterSends: true})
	p := &pair{tux: tux, us: netip.AddrPortFrom(lh.Addr, 2425), them: netip.AddrPortFrom(ih.Addr, 2425)}
	t.Cleanup(func() { p.capture(t) })
	// iptux first, so the entry exchange is lanchat's BR_ENTRY and iptux's answer.
	p.lc = lantest.Start(t, lh, nick)
	return p
}

// capture logs every datagram between iptux and lanchat, as iptux logged
// it, and appends them to -iptux.captures when given: real vectors for the
// codec tests.
func (p *pair) capture(t *testing.T) {
	var b strings.Builder
	for _, d := range p.tux.Datagrams() {
		if d.Peer != p.us {
			continue
		}
		dir := "lanchat → iptux 0.8.3"
		if d.Sent {
			dir = "iptux 0.8.3 → lanchat"
		}
		h, _ := parseHeader(d.Data)
		fmt.Fprintf(&b, "# %s: %s, command %#x\n%s\n", t.Name(), dir, h.Command, quoteBytes(d.Data))
	}
	t.Logf("datagrams between iptux and lanchat:\n%s", b.String())
	if *capturesOut == "" || b.Len() == 0 {
		return
	}
	f, err := os.OpenFile(*capturesOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Error(err)
	}
}

// quoteBytes is a Go string literal of b with every byte outside printable
// ASCII escaped, as iptux's own log shows datagrams, so that GBK and UTF-8
// bytes look like what they are.
func quoteBytes(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c == '\n':
			s.WriteString(`\n`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&s, `\x%02x`, c)
		default:
			s.WriteByte(c)
		}
	}
	s.WriteByte('"')
	return s.String()
}

// waitContact polls lanchat's peer list until iptux is on it.
func (p *pair) waitContact(t *testing.T, timeout time.Duration) peer.Contact {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, c := range p.lc.Peers() {
			if c.Addr == p.them {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("lanchat does not list iptux at %v after %v: %+v", p.them, timeout, p.lc.Peers())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIptux runs lanchat against a real iptux 0.8.3: discovery both ways,
// a message each way, and goodbye. The cases differ in lanchat's nick,
// which decides the charset iptux picks for lanchat (protocol §7.3): a
// datagram that is valid UTF-8 keeps iptux on UTF-8, the GBK legacy nick in
// our BR_ENTRY switches it to GB18030, and lanchat must mirror the choice.
func TestIptux(t *testing.T) {
	requireIptux(t)
	lantest.Binary(t) // build once, before the parallel cases start their clocks
	cases := []struct {
		name, prefix string
		nick         string // lanchat's
		charset      string // the one iptux picks for lanchat, which lanchat must use too
		toIptux      string
		fromIptux    string // typed into iptux's chat window
	}{
		{"ascii-nick", "10.241.1.0/24", "xiaoming", "utf-8", "你好，iptux！UTF-8 carries everything: 😀 €", "收到 ok 😀"},
		{"chinese-nick", "10.241.2.0/24", "小明", "gbk", "你好，世界！测试 interop", "回复：收到 ok 😀"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			p := newPair(t, tc.prefix, tc.nick)
			events := p.lc.Events()

			// (a) Each lists the other.
			c := p.waitContact(t, 5*time.Second)
			if c.Client != "iptux" || c.Nick != tuxNick || c.Group != tuxGroup {
				t.Errorf("lanchat lists iptux as client %q nick %q group %q, want iptux %q %q", c.Client, c.Nick, c.Group, tuxNick, tuxGroup)
			}
			p.tux.WaitDatagram(3*time.Second, "lanchat's BR_ENTRY", func(d datagram, h header) bool {
				return !d.Sent && d.Peer == p.us && h.Mode() == modeBrEntry
			})
			_, ans := p.tux.WaitDatagram(3*time.Second, "an ANSENTRY to lanchat", func(d datagram, h header) bool {
				return d.Sent && d.Peer == p.us && h.Mode() == modeAnsEntry
			})
			fields := bytes.Split(ans.Extra, []byte{0})
			if len(fields) < 4 || string(fields[3]) != "utf-8" {
				t.Errorf("iptux's ANSENTRY extra %q: want nick, group, icon and iptux's encoding field utf-8", ans.Extra)
			}
			chosen := "utf-8"
			if bytes.Equal(fields[0], gbkTuxNick) && bytes.Equal(fields[1], gbkTuxGroup) {
				chosen = "gbk"
			} else if string(fields[0]) != tuxNick || string(fields[1]) != tuxGroup {
				t.Errorf("iptux's ANSENTRY nick %q group %q are neither UTF-8 nor GBK", fields[0], fields[1])
			}
			if chosen != tc.charset {
				t.Errorf("iptux answered lanchat in %s, want %s", chosen, tc.charset)
			}
			if family(c.Charset) != chosen {
				t.Errorf("lanchat sends %s to iptux, but iptux decided lanchat is %s and decodes it so", c.Charset, chosen)
			}

			// (b) lanchat → iptux: acknowledged, and displayed as sent.
			out, err := p.lc.CLI("send", c.Key, tc.toIptux)
			if err != nil || !strings.HasPrefix(out, "delivered to") {
				t.Fatalf("lanchat send: %v %s", err, out)
			}
			_, msg := p.tux.WaitDatagram(3*time.Second, "lanchat's SENDMSG", func(d datagram, h header) bool {
				return !d.Sent && d.Peer == p.us && h.Mode() == modeSendMsg
			})
			p.tux.WaitDatagram(3*time.Second, "iptux's RECVMSG for it", func(d datagram, h header) bool {
				return d.Sent && d.Peer == p.us && h.Mode() == modeRecvMsg && string(bytes.TrimRight(h.Extra, "\x00")) == msg.PacketNo
			})
			chat := p.tux.WaitChat(3*time.Second, 1)
			if want := "Recevied-From: Nickname:" + tc.nick + " "; !strings.Contains(chat[0].Head, want) {
				t.Errorf("iptux shows the message from %q, want %q", chat[0].Head, want)
			}
			if want := "[STRING]" + tc.toIptux; chat[0].Body != want {
				t.Errorf("iptux shows %q, want %q (lanchat sent %s)", chat[0].Body, want, quoteBytes(msg.Extra))
			}

			// (c) iptux → lanchat: typed into iptux's chat window, which
			// opened on the message above.
			p.tux.Reply(p.us.Addr(), tc.fromIptux)
			got := waitIncoming(t, events, 10*time.Second)
			if got.Text != tc.fromIptux || got.Peer != c.Key {
				t.Errorf("lanchat received %q from %s, want %q from %s", got.Text, got.Peer, tc.fromIptux, c.Key)
			}
			_, tuxMsg := p.tux.WaitDatagram(3*time.Second, "iptux's SENDMSG", func(d datagram, h header) bool {
				return d.Sent && d.Peer == p.us && h.Mode() == modeSendMsg
			})
			p.tux.WaitDatagram(3*time.Second, "lanchat's RECVMSG", func(d datagram, h header) bool {
				return !d.Sent && d.Peer == p.us && h.Mode() == modeRecvMsg && string(bytes.TrimRight(h.Extra, "\x00")) == tuxMsg.PacketNo
			})

			// (d) lanchat says goodbye.
			if err := p.lc.Stop(); err != nil {
				t.Errorf("stop lanchat: %v", err)
			}
			p.tux.WaitDatagram(3*time.Second, "lanchat's BR_EXIT", func(d datagram, h header) bool {
				return !d.Sent && d.Peer == p.us && h.Mode() == modeBrExit
			})
			t.Logf("%s: done in %v", tc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// family maps a charset lanchat reports to what iptux can tell apart:
// GB18030 is the superset of GBK that iptux decodes with.
func family(charset string) string {
	if charset == "gb18030" {
		return "gbk"
	}
	return charset
}

// waitIncoming returns the next incoming message event.
func waitIncoming(t *testing.T, events <-chan lantest.Event, timeout time.Duration) peer.Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("lanchat's event stream ended")
			}
			if m, ok := e.Message(); ok && m.Dir == peer.Incoming {
				return m
			}
		case <-timer.C:
			t.Fatalf("no message reached lanchat within %v", timeout)
		}
	}
}

// TestIptuxBeyondGBK sends iptux, once it has taken lanchat for GB18030,
// text that GBK cannot carry (an emoji) and text whose GBK form iptux's
// GB18030 decoder rejects (€ is the single byte 0x80 in CP936, A2E3 in
// GB18030). iptux decodes with GB18030, so lanchat should encode with it.
//
// Today lanchat encodes GBK: the emoji arrives as "?", and the 0x80 byte
// makes iptux's conversion fail, fall back to UTF-16 and keep UTF-16 for
// lanchat from then on: it acknowledges with an unreadable UTF-16
// datagram, so nothing lanchat sends is acknowledged again. The test
// skips while it sees exactly that, and starts asserting once it is fixed.
func TestIptuxBeyondGBK(t *testing.T) {
	requireIptux(t)
	lantest.Binary(t)
	t.Parallel()
	p := newPair(t, "10.241.3.0/24", "小明")
	c := p.waitContact(t, 5*time.Second)
	if family(c.Charset) != "gbk" {
		t.Fatalf("lanchat sends %s to iptux, want gbk or gb18030 (the premise of this test)", c.Charset)
	}
	texts := []string{"笑😀", "价格 5€"}
	var undelivered []string
	for _, text := range texts {
		if out, err := p.lc.CLI("send", c.Key, text); err != nil {
			undelivered = append(undelivered, fmt.Sprintf("%q: %s", text, strings.TrimSpace(out)))
		}
	}
	var shown []string
	deadline := time.Now().Add(3 * time.Second)
	for len(shown) < len(texts) && time.Now().Before(deadline) {
		shown = shown[:0]
		for _, e := range p.tux.Chat() {
			shown = append(shown, strings.TrimPrefix(e.Body, "[STRING]"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(undelivered) == 0 && fmt.Sprint(shown) == fmt.Sprint(texts) {
		return
	}
	var sent, acks []string
	for _, d := range p.tux.Datagrams() {
		h, ok := parseHeader(d.Data)
		switch {
		case d.Peer != p.us:
		case !d.Sent && ok && h.Mode() == modeSendMsg:
			sent = append(sent, quoteBytes(d.Data))
		case d.Sent && !ok:
			acks = append(acks, quoteBytes(d.Data))
		}
	}
	report := fmt.Sprintf("iptux shows %q, want %q\nundelivered: %q\nlanchat sent: %s\niptux's unparsable answers: %s",
		shown, texts, undelivered, strings.Join(sent, " "), strings.Join(acks, " "))
	if len(shown) > 0 && shown[0] == "笑?" && len(undelivered) == 1 && strings.Contains(p.tux.Log(), "g_convert failed") {
		t.Skipf("known lanchat bug: GBK instead of GB18030 toward iptux loses the emoji, and the 0x80 for € breaks iptux's decoding of everything lanchat sends from then on\n%s", report)
	}
	t.Fatal(report)
}
