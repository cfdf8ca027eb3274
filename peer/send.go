package peer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lanchat/lanchat/discovery"
	"github.com/lanchat/lanchat/ipmsg"
)

// SendOptions change how a message is sent.
type SendOptions struct {
	Seal  bool     // sealed: the peer must open it; we learn when they do
	Files []string // files and folders to offer; the peer downloads them when it accepts

	autoReply bool // the away text, answering a relay member's message
}

// sentRef is a sealed message of ours awaiting READMSG from where it went.
type sentRef struct {
	peer, id string
	to       netip.Addr
}

type sealedRef struct {
	to        netip.AddrPort
	no        uint64
	noRaw     string // no as the sender wrote it; READMSG echoes it
	readCheck bool
	peer      string
	// A relay member's sealed message: the member, and the message's id
	// as the member sent it, which the "opened" notice names.
	member, ref string
}

// Send sends text to each contact and waits until every copy is delivered
// or failed. Long text is split into parts that each fit the peer's buffer;
// parts go in order. The returned messages carry their final status; err is
// set only when a contact cannot be resolved or queued.
func (n *Node) Send(ctx context.Context, to []string, text string, opt SendOptions) ([]Message, error) {
	type wait struct {
		ch chan Message
		wk *waker // nil for relay deliveries, which do not wake it
	}
	var waits []wait
	wk := n.getWaker()
	defer func() {
		if ctx.Err() != nil && wk != nil {
			wk.close() // its deadline is spent
			return
		}
		n.putWaker(wk)
	}()
	if len(opt.Files) > 0 {
		abs, err := absPaths(opt.Files)
		if err != nil {
			return nil, err
		}
		opt.Files = abs
	}
	for _, spec := range to {
		p, err := n.resolve(spec)
		if errors.Is(err, ErrUnknownPeer) { // not on the LAN: perhaps through the relay
			t, ok, rerr := n.resolveRelay(spec)
			if rerr != nil {
				return nil, rerr
			}
			if ok {
				w, err := n.sendRelay(ctx, t, text, opt)
				if err != nil {
					return nil, err
				}
				waits = append(waits, wait{ch: w})
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		ws, err := n.enqueue(p, text, opt, len(to) > 1, wk)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			waits = append(waits, wait{w, wk})
		}
	}
	out := make([]Message, 0, len(waits))
	for _, w := range waits {
		m, err := n.awaitResult(ctx, w.wk, w.ch)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// enqueue builds the datagrams for one contact and queues them; each
// delivery's end wakes wk.
func (n *Node) enqueue(p discovery.Peer, text string, opt SendOptions, multi bool, wk *waker) ([]chan Message, error) {
	cs, utf8opt := n.sendCharset(p)
	cmd := ipmsg.SendMsg | ipmsg.SendCheckOpt
	if utf8opt {
		cmd |= ipmsg.UTF8Opt | ipmsg.CapUTF8Opt
	}
	if opt.Seal {
		cmd |= ipmsg.SecretExOpt
	}
	if multi {
		cmd |= ipmsg.MulticastOpt
	}
	room := p.Client.MaxSend() - n.headerRoom(cs)
	parts := splitText(text, cs, room)
	var waits []chan Message
	for i, part := range parts {
		no := n.nos.Next()
		extra := append(cs.AppendEncode(make([]byte, 0, len(part)+1), part), 0)
		var files []File
		if i == 0 && len(opt.Files) > 0 { // the offer rides on the first part
			list, pub, err := n.share(no, p, cs, opt.Files)
			if err != nil {
				return waits, err
			}
			if len(extra)+len(list) > room {
				n.files.srv.Cancel(no)
				return waits, fmt.Errorf("the list of %d files is too long for one message to %s: send their folder instead", len(opt.Files), p.Nick)
			}
			extra, files = append(extra, list...), pub
		}
		c := cmd
		if files != nil {
			c |= ipmsg.FileAttachOpt
		}
		pkt := n.packetNo(no, c, cs, extra)
		m := Message{ID: outgoingID(no), Peer: p.Key, Nick: p.Nick, Dir: Outgoing,
			Text: part, Time: time.Now(), Sealed: opt.Seal, Status: Sending, PacketNo: no, Files: files}
		if len(parts) > 1 {
			m.Part, m.Parts = i+1, len(parts)
		}
		o := &outgoing{msg: m, pkt: pkt, to: p.Addr, legacy: p.Client != ipmsg.ClientLanchat,
			result: make(chan Message, 1), wake: wk}
		if err := n.queue(p.Key, o); err != nil {
			if files != nil {
				n.files.srv.Cancel(no)
			}
			return waits, err
		}
		waits = append(waits, o.result)
	}
	return waits, nil
}

// outgoingID is a sent message's ID: "o" and its packet number.
func outgoingID(no uint64) string {
	var b [24]byte
	return string(strconv.AppendUint(append(b[:0], 'o'), no, 10))
}

// headerRoom is the space the header and the text's NUL take.
func (n *Node) headerRoom(cs ipmsg.Charset) int {
	return len(ipmsg.Version) + 20 + n.headerNames(cs).raw + 10 + 6 + 1
}

// splitText cuts text into parts whose encoding fits limit bytes, at a
// line break in the second half of a part when there is one, and never
// inside a character.
func splitText(text string, cs ipmsg.Charset, limit int) []string {
	var parts []string
	start, size, lastNL := 0, 0, -1
	var buf [8]byte
	for i, r := range text {
		w := 1
		if r >= utf8.RuneSelf {
			w = len(cs.AppendEncode(buf[:0], string(r)))
		}
		if size+w > limit && i > start {
			cut := i
			if lastNL >= start+(i-start)/2 {
				cut = lastNL + 1
			}
			parts = append(parts, text[start:cut])
			start, size, lastNL = cut, len(cs.Encode(text[cut:i])), -1
		}
		size += w
		if r == '\n' {
			lastNL = i
		}
	}
	return append(parts, text[start:])
}
