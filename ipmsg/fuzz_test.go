package ipmsg

import (
	"bufio"
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// addPackets seeds f with every vector that is a complete packet.
func addPackets(f *testing.F) {
	for _, v := range loadVectors(f) {
		if _, err := Parse(v.data); err == nil || strings.HasPrefix(v.name, "DICT") {
			f.Add(v.data)
		}
	}
}

// FuzzParse checks that Parse never panics, that Append writes a packet
// Parse reads back to the same bytes, and that the readers of every kind of
// extra survive whatever Parse accepts.
func FuzzParse(f *testing.F) {
	addPackets(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		b1 := p.Append(nil)
		p2, err := Parse(b1)
		if err != nil {
			t.Fatalf("Parse(Append(Parse(%q))) = %v", b, err)
		}
		if b2 := p2.Append(nil); !bytes.Equal(b1, b2) {
			t.Fatalf("Append not stable:\n%q\n%q", b1, b2)
		}
		if !bytes.Equal(p2.Extra, p.Extra) || !bytes.Equal(p2.User, p.User) || p2.No != p.No || p2.Command != p.Command {
			t.Fatalf("round trip changed the packet: %+v != %+v", p2, p)
		}
		if q := p.Clone(); !reflect.DeepEqual(q, p) {
			t.Fatalf("Clone = %+v, want %+v", q, p)
		}
		if canonical(b, p) && !bytes.Equal(b1, b) {
			t.Fatalf("Append of a canonical packet:\n got %q\nwant %q", b1, b)
		}
		readAllExtras(p)
	})
}

// canonical reports whether b spells its numbers as Append does, so that
// Parse lost nothing and Append must give b back.
func canonical(b []byte, p Packet) bool {
	f := bytes.SplitN(b, []byte(":"), 6)
	return string(f[1]) == strconv.FormatUint(p.No, 10) && string(f[4]) == strconv.FormatUint(uint64(p.Command), 10)
}

// readAllExtras runs every reader of an extra on p; only panics matter.
func readAllExtras(p Packet) {
	e := ParseEntry(p, Unknown)
	ParseEntry(p, CP932)
	DetectClient(p.Version, &e)
	_ = p.Command.String()
	_, _ = p.NoExtra()
	_ = p.FeiQMAC()
	_ = p.Sections()
	for _, cs := range []Charset{Unknown, GB18030} {
		_, _ = ParseFileList(p.Section(1), cs)
		_, _ = ParseHostList(p.Extra, cs)
	}
	if r, err := ParseFileRequest(p); err == nil {
		_ = r.IDCandidates()
	}
}

// FuzzFileList checks that ParseFileList never panics and that what
// AppendFileList writes from its result parses back to the same bytes.
func FuzzFileList(f *testing.F) {
	for _, v := range loadVectors(f) {
		if p, err := Parse(v.data); err == nil && p.Command.Has(FileAttachOpt) && p.Command.Mode() == SendMsg {
			f.Add(p.Section(1))
		} else if strings.HasPrefix(v.name, "FILE-") && err != nil {
			f.Add(v.data)
		}
	}
	f.Add([]byte("0:::a::::b:::1:0:1:14=1,2:8=3:\a:1:\xce\xc4:2:3:2:\a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, cs := range []Charset{Unknown, GB18030, CP932} {
			_, _ = ParseFileList(b, cs)
		}
		files, err := ParseFileList(b, UTF8)
		if err != nil {
			return
		}
		b1 := AppendFileList(nil, files, UTF8)
		files2, err := ParseFileList(b1, UTF8)
		if err != nil {
			if longName(files) {
				return // decoding widened a name past MaxFileName
			}
			t.Fatalf("ParseFileList(AppendFileList(%+v)) = %v\n%q", files, err, b1)
		}
		if b2 := AppendFileList(nil, files2, UTF8); !bytes.Equal(b1, b2) {
			t.Fatalf("AppendFileList not stable:\n%q\n%q", b1, b2)
		}
		for i := range files {
			f1, f2 := files[i], files2[i]
			if f1.ID != f2.ID || f1.Size != f2.Size || f1.MTime != f2.MTime || f1.Type() != f2.Attr ||
				!reflect.DeepEqual(f1.Ext, f2.Ext) {
				t.Fatalf("file %d changed: %+v -> %+v", i, f1, f2)
			}
		}
	})
}

func longName(files []File) bool {
	for _, f := range files {
		if len(f.Name) > MaxFileName {
			return true
		}
	}
	return false
}

// FuzzFileRequest checks ParseFileRequest and ReadFileRequest on any extra:
// no panic, AppendFileRequest's output parses to the same request, and the
// stream reader consumes a prefix of the stream that is exactly the packet
// it returns.
func FuzzFileRequest(f *testing.F) {
	for _, v := range loadVectors(f) {
		if p, err := Parse(v.data); err == nil && (p.Command.Mode() == GetFileData || p.Command.Mode() == GetDirFiles) {
			f.Add(p.Extra, p.Command.Mode() == GetDirFiles)
		}
	}
	f.Fuzz(func(t *testing.T, extra []byte, dir bool) {
		p := Packet{Version: []byte("1"), No: 1, User: []byte("u"), Host: []byte("h"), Command: GetFileData, Extra: extra}
		if dir {
			p.Command = GetDirFiles
		}
		checkRequestRoundTrip(t, p)
		checkRequestStream(t, p.Append(nil))
	})
}

func checkRequestRoundTrip(t *testing.T, p Packet) {
	r, err := ParseFileRequest(p)
	if err != nil {
		return
	}
	if ids := r.IDCandidates(); ids[0] != r.ID || len(ids) > 2 {
		t.Fatalf("IDCandidates = %v for %#x", ids, r.ID)
	}
	b1 := AppendFileRequest(nil, r)
	r2, err := ParseFileRequest(Packet{Command: r.Command(), Extra: b1})
	want := r
	if r.Dir {
		want.Offset = 0 // not sent for folders
	}
	if err != nil || r2 != want {
		t.Fatalf("ParseFileRequest(%q) = %+v, %v; want %+v", b1, r2, err, want)
	}
}

func checkRequestStream(t *testing.T, stream []byte) {
	src := bytes.NewReader(stream)
	r := bufio.NewReader(src)
	p, _, err := ReadFileRequest(r)
	if err != nil {
		return
	}
	read := len(stream) - r.Buffered() - src.Len()
	if got := p.Append(nil); !bytes.Equal(got, stream[:read]) {
		t.Fatalf("ReadFileRequest read %q but returned %q", stream[:read], got)
	}
}

// FuzzDirHeader checks that ReadDirHeader never panics, consumes exactly
// the length its prefix states, and that AppendDirHeader's output reads back
// to the same header and bytes.
func FuzzDirHeader(f *testing.F) {
	for _, v := range loadVectors(f) {
		if strings.HasPrefix(v.name, "DIR-") && v.name != "DIR-1" {
			f.Add(v.data)
		}
	}
	f.Add([]byte("1d:a:b=c:5:1:14=1:16=2:x=y:hello"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadDirHeader(bufio.NewReader(bytes.NewReader(b)), GB18030)
		src := bytes.NewReader(b)
		r := bufio.NewReader(src)
		h, err := ReadDirHeader(r, UTF8)
		if err != nil {
			return
		}
		prefix, _, _ := bytes.Cut(b, []byte(":"))
		if n, _ := parseHex(prefix, 64); int(n) != len(b)-r.Buffered()-src.Len() {
			t.Fatalf("read %d bytes for a header of %d", len(b)-r.Buffered()-src.Len(), n)
		}
		b1 := AppendDirHeader(nil, h, UTF8)
		if len(b1) > MaxDirHeader {
			return // decoding widened the name past the limit
		}
		h2, err := ReadDirHeader(bufio.NewReader(bytes.NewReader(b1)), UTF8)
		want := h
		want.Name = strings.ReplaceAll(h.Name, ":", "_")
		if err != nil || h2 != want {
			t.Fatalf("ReadDirHeader(%q) = %+v, %v; want %+v", b1, h2, err, want)
		}
		if b2 := AppendDirHeader(nil, h2, UTF8); !bytes.Equal(b1, b2) {
			t.Fatalf("AppendDirHeader not stable:\n%q\n%q", b1, b2)
		}
	})
}

// FuzzHostList checks that ParseHostList never panics and that
// AppendHostList's output of its result parses back to the same bytes.
func FuzzHostList(f *testing.F) {
	for _, c := range hostListCases {
		f.Add([]byte(c.wire))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseHostList(b, GB18030)
		l, err := ParseHostList(b, UTF8)
		if err != nil {
			return
		}
		b1 := AppendHostList(nil, l, UTF8)
		if len(b1) > MaxDatagram {
			return
		}
		l2, err := ParseHostList(b1, UTF8)
		if err != nil || l2.Next != l.Next || len(l2.Hosts) != len(l.Hosts) {
			t.Fatalf("ParseHostList(%q) = %+v, %v; want %+v", b1, l2, err, l)
		}
		for i, h := range l.Hosts {
			if h2 := l2.Hosts[i]; h2.Port != h.Port || h2.Status != h.Status {
				t.Fatalf("host %d changed: %+v -> %+v", i, h, h2)
			}
		}
		if b2 := AppendHostList(nil, l2, UTF8); !bytes.Equal(b1, b2) {
			t.Fatalf("AppendHostList not stable:\n%q\n%q", b1, b2)
		}
	})
}
