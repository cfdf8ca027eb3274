package relay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{T: "hello", V: Version, Profile: &Profile{Key: "li@pc-1", Nick: "小李", Group: "研发"}},
		{T: "send", ID: "o17", To: "12D3KooW", Body: []byte(`{"text":"你好"}`)},
		{T: "deliver", Seq: 1 << 40, Env: &Envelope{ID: "a/o1", From: "a", Kind: KindMsg, Body: []byte(`{"text":"x"}`)}},
		{T: "error", ID: "o1", Code: CodeNotMember, Error: "no"},
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := WriteFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for _, want := range frames {
		got, err := ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	if _, err := ReadFrame(r); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameHostile(t *testing.T) {
	huge := binary.AppendUvarint(nil, MaxFrame+1)
	for name, in := range map[string][]byte{
		"too large":      huge,
		"varint overrun": bytes.Repeat([]byte{0xff}, 12),
		"truncated":      append(binary.AppendUvarint(nil, 10), `{"t":`...),
		"not json":       append(binary.AppendUvarint(nil, 3), "abc"...),
		"no type":        append(binary.AppendUvarint(nil, 2), "{}"...),
	} {
		_, err := ReadFrame(bufio.NewReader(bytes.NewReader(in)))
		if err == nil || err == io.EOF {
			t.Errorf("%s: err %v, want an error", name, err)
		}
		if name == "too large" && !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("too large: %v", err)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	b, _ := AppendFrame(nil, Frame{T: "send", ID: "o1", To: "x", Body: []byte(`{"text":"hi"}`)})
	f.Add(b)
	f.Add([]byte{0})
	f.Add(bytes.Repeat([]byte{0x80}, 9))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		for {
			fr, err := ReadFrame(r)
			if err != nil {
				return
			}
			// Whatever parses must encode and parse back to the same frame.
			out, err := AppendFrame(nil, fr)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", fr, err)
			}
			back, err := ReadFrame(bufio.NewReader(bytes.NewReader(out)))
			if err != nil || back.T != fr.T || back.ID != fr.ID || back.Seq != fr.Seq {
				t.Fatalf("round trip of %+v gave %+v, %v", fr, back, err)
			}
		}
	})
}

func TestInviteCode(t *testing.T) {
	in := Invite{Secret: "s3cret", Addrs: []string{
		"/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
		"/ip4/10.0.0.1/udp/4001/quic-v1/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
	}}
	code := in.Code()
	got, err := ParseInvite("  " + code + "\n")
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("ParseInvite(Code()) = %+v, %v", got, err)
	}
	for name, bad := range map[string]string{
		"empty":      "",
		"prefix":     "XX1-abc",
		"cut":        code[:len(code)/2],
		"no p2p":     Invite{Secret: "s", Addrs: []string{"/ip4/10.0.0.1/tcp/4001"}}.Code(),
		"two relays": Invite{Secret: "s", Addrs: []string{in.Addrs[0], "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"}}.Code(),
	} {
		if _, err := ParseInvite(bad); err == nil {
			t.Errorf("%s: ParseInvite(%q) succeeded", name, bad)
		}
	}
	if !strings.HasPrefix(code, invitePrefix) {
		t.Errorf("code %q lacks its prefix", code)
	}
}

func TestLoadIdentity(t *testing.T) {
	dir := t.TempDir()
	_, id1, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, id2, err := LoadIdentity(dir)
	if err != nil || id1 != id2 {
		t.Fatalf("second load: %s, %v; want the same identity %s", id2, err, id1)
	}
}
