package ipmsg

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// vector is one line of testdata/vectors.txt.
type vector struct {
	name string
	data []byte
}

// loadVectors reads testdata/vectors.txt: "NAME <Go-quoted bytes>" per line.
func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	text, err := os.ReadFile("testdata/vectors.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var vs []vector
	for i, line := range strings.Split(string(text), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, quoted, _ := strings.Cut(line, " ")
		data, err := strconv.Unquote(quoted)
		if err != nil {
			tb.Fatalf("testdata/vectors.txt:%d: %s: %v", i+1, name, err)
		}
		vs = append(vs, vector{name, []byte(data)})
	}
	return vs
}

// vectorBytes returns the named vector.
func vectorBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	for _, v := range loadVectors(tb) {
		if v.name == name {
			return v.data
		}
	}
	tb.Fatalf("no vector %s", name)
	return nil
}

// TestVectorsCovered makes sure every vector has a table case below and every
// case has a vector, so neither list can drift from the other.
func TestVectorsCovered(t *testing.T) {
	cases := map[string]int{}
	for _, c := range packetCases {
		cases[c.name]++
	}
	for _, c := range fileListCases {
		cases[c.name]++
	}
	for _, c := range dirCases {
		cases[c.name]++
	}
	cases["DICT-1"]++ // TestIPDictVector
	seen := map[string]bool{}
	for _, v := range loadVectors(t) {
		if seen[v.name] {
			t.Errorf("vector %s appears twice", v.name)
		}
		seen[v.name] = true
		if cases[v.name] != 1 {
			t.Errorf("vector %s has %d test cases, want 1", v.name, cases[v.name])
		}
	}
	for name := range cases {
		if !seen[name] {
			t.Errorf("test case %s has no vector", name)
		}
	}
}

// packetCase is what one complete packet decodes to. Fields after the header
// apply to the packet's kind; a nil pointer means "not this kind".
type packetCase struct {
	name      string // in testdata/vectors.txt
	length    int    // size observed on the LAN; 0 when not captured
	version   string
	no        uint64
	user      string // raw header bytes
	host      string
	cmd       Command
	client    Client
	versionOK bool
	mac       string // FeiQ's MAC from the version

	entry   *Entry       // entry-type packets: ParseEntry(p, Unknown)
	text    *decoded     // first section through DecodeText(…, UTF8OPT, Unknown)
	payload string       // binary after the first NUL (pictures)
	ackNo   *uint64      // NoExtra
	files   []File       // second section through ParseFileList
	req     *FileRequest // ParseFileRequest
}

type decoded struct {
	s  string
	cs Charset
}

var (
	iptux083 = packetCase{version: "1_iptux 0.8.3", user: "root", host: "vm", client: ClientIptux, versionOK: true}
	iptux010 = packetCase{version: "1_iptux 0.10.0", user: "user", host: "host", client: ClientIptux, versionOK: true}
	alice    = packetCase{version: "1_iptux 0.10.0", user: "alice", host: "box", client: ClientIptux, versionOK: true}
	probe    = packetCase{version: "1", user: "probe", host: "probehost", client: ClientIPMsg, versionOK: true}
	winUser  = packetCase{version: "1", user: "user", host: "host", client: ClientIPMsg, versionOK: true}
	feiqLee  = packetCase{version: "1_lbt6_0#128#C85B76BD9F3F#0#0#0#4001#9", user: "Lee", host: "LEE-PC",
		client: ClientFeiQ, versionOK: true, mac: "C85B76BD9F3F"}
)

// like fills the header fields of a case from a sender template.
func like(from packetCase, c packetCase) packetCase {
	c.version, c.user, c.host = from.version, from.user, from.host
	c.client, c.versionOK, c.mac = from.client, from.versionOK, from.mac
	return c
}

var iptuxEntry = Entry{User: "root", Host: "vm", Nick: "iptux-h1", Group: "interop",
	IptuxIcon: "icon-tux.png", IptuxEncoding: "utf-8"}

var packetCases = []packetCase{
	// 1. Entry and presence
	like(iptux083, packetCase{name: "ENT-1", length: 64, no: 1, cmd: BrEntry | AbsenceOpt, entry: &iptuxEntry}),
	like(iptux083, packetCase{name: "ENT-2", length: 64, no: 9, cmd: AnsEntry | AbsenceOpt, entry: &iptuxEntry}),
	like(iptux083, packetCase{name: "ENT-3", length: 65, no: 10, cmd: AnsEntry | AbsenceOpt, entry: &iptuxEntry}),
	like(probe, packetCase{name: "ENT-4", length: 46, no: 1795380091, cmd: BrEntry,
		entry: &Entry{User: "probe", Host: "probehost", Nick: "probe-h2", Group: "probe"}}),
	like(winUser, packetCase{name: "ENT-5", no: 2, cmd: AnsEntry,
		entry: &Entry{User: "user", Host: "host", Nick: "nick", Group: "group"}}),
	{name: "ENT-6", version: "iptux 0.8.0", no: 1, user: "lidaobing", host: "lidaobing.lan", cmd: BrEntry | AbsenceOpt,
		client: ClientIptux, versionOK: false, // W drops it: atoi("iptux…") is 0
		entry: &Entry{User: "lidaobing", Host: "lidaobing.lan", Nick: "lidaobing"}},
	// The truncated UTF-8 nick is not valid UTF-8, so §7.4 reads it as GBK;
	// what matters is that it decodes to valid text without a panic.
	{name: "ENT-7", version: "1_iptux 0.8.0-b1", no: 6, user: "lidaobing", host: "LIs-MacBook-Pro.local",
		cmd: AnsEntry | AbsenceOpt, client: ClientIptux, versionOK: true,
		entry: &Entry{User: "lidaobing", Host: "LIs-MacBook-Pro.local", Nick: "涓\ufffd\ufffd",
			IptuxIcon: "icon-tux.png", IptuxEncoding: "utf-8", Legacy: GB18030}},
	{name: "ENT-8", version: "1_iptux 0.8.0-b1", no: 6, user: "\xe4\xb8\xad\xe4\xb8", host: "LIs-MacBook-Pro.local",
		cmd: AnsEntry | AbsenceOpt, client: ClientIptux, versionOK: true,
		entry: &Entry{User: "涓\ufffd\ufffd", Host: "LIs-MacBook-Pro.local", Nick: "涓\ufffd\ufffd",
			IptuxIcon: "icon-tux.png", IptuxEncoding: "utf-8", Legacy: GB18030}},
	like(feiqLee, packetCase{name: "ENT-9", no: 1655805995, cmd: NoOperation,
		entry: &Entry{User: "Lee", Host: "LEE-PC"}}),
	like(feiqLee, packetCase{name: "ENT-10", no: 1655805996, cmd: BrEntry | FileAttachOpt | EncryptOpt,
		entry: &Entry{User: "Lee", Host: "LEE-PC", Nick: "Lee"}}),
	{name: "ENT-11", version: "1_lbt6_0#128#5C60BA7361C6#1944#0#0#4001#9", no: 1765442982, user: "T0170006",
		host: "SHIKUN-SH", cmd: AnsEntry | FileAttachOpt | EncryptOpt, client: ClientFeiQ, versionOK: true,
		mac: "5C60BA7361C6", entry: &Entry{User: "T0170006", Host: "SHIKUN-SH", Nick: "ssk"}},
	{name: "ENT-12", version: "1_lbt4_41#128#24F5AAD7C96A#0#0#0#311c#9", no: 1767153479, user: "t0250254",
		host: "DESKTOP-IOHG15K", cmd: AnsEntry | FileAttachOpt | EncryptOpt, client: ClientFeiQ, versionOK: true,
		mac: "24F5AAD7C96A", entry: &Entry{User: "t0250254", Host: "DESKTOP-IOHG15K", Nick: "陈俞辛", Legacy: GB18030}},
	like(winUser, packetCase{name: "ENT-13", no: 1700000000,
		cmd:   BrEntry | FileAttachOpt | ClipboardOpt | EncryptOpt | EncExtMsgOpt | CapUTF8Opt | CapFileEncOpt,
		entry: &Entry{User: "user", Host: "host", Nick: "nick", VS: "00010002:4:99:103", HasUTF8Block: true}}),
	like(winUser, packetCase{name: "ENT-14", no: 1700000001,
		cmd:   AnsEntry | FileAttachOpt | ClipboardOpt | EncryptOpt | EncExtMsgOpt | CapUTF8Opt | CapFileEncOpt | UTF8Opt,
		entry: &Entry{User: "user", Host: "host", Nick: "nick", Group: "grp", VS: "00010002:4:99:103", HasUTF8Block: true}}),
	like(iptux010, packetCase{name: "ENT-15", no: 43, cmd: BrExit | DialupOpt, entry: &Entry{User: "user", Host: "host"}}),

	// 2. Messages
	{name: "MSG-1", version: "1", no: 100, user: "shirouzu", host: "jupiter", cmd: SendMsg,
		client: ClientIPMsg, versionOK: true, text: &decoded{"Hello", Unknown}},
	like(iptux083, packetCase{name: "MSG-2", length: 51, no: 21, cmd: SendMsg | SendCheckOpt,
		text: &decoded{"here is a file 文件", UTF8}}),
	like(iptux083, packetCase{name: "MSG-3", length: 55, no: 19, cmd: SendMsg | SendCheckOpt,
		text: &decoded{"hi from iptux 你好 GBK?", UTF8}}),
	like(iptux083, packetCase{name: "MSG-4", length: 48, no: 15, cmd: SendMsg | SendCheckOpt,
		text: &decoded{"hi from iptux 你好", GB18030}}),
	like(probe, packetCase{name: "MSG-5", length: 73, no: 1795380093, cmd: SendMsg | SendCheckOpt,
		text: &decoded{"hello from probe 你好，世界 (utf8)", UTF8}}),
	like(probe, packetCase{name: "MSG-6", length: 67, no: 1795380094, cmd: SendMsg | SendCheckOpt,
		text: &decoded{"hello from probe 你好，世界 (gbk)", GB18030}}),
	{name: "MSG-7", version: "1_lbt4_10#32899#002481627512#0#0#0", no: 1289671407, user: "AlphaGrey",
		host: "hostName", cmd: SendMsg | SendCheckOpt, client: ClientFeiQ, versionOK: true, mac: "002481627512",
		text: &decoded{"This is content text!", Unknown}},

	// 3. Acks and control
	like(iptux083, packetCase{name: "ACK-1", length: 40, no: 11, cmd: RecvMsg | SendCheckOpt, ackNo: new(uint64(1795380093))}),
	like(iptux083, packetCase{name: "ACK-2", length: 40, no: 12, cmd: RecvMsg | SendCheckOpt, ackNo: new(uint64(1795380094))}),
	like(probe, packetCase{name: "ACK-3", length: 35, no: 1795380107, cmd: RecvMsg, ackNo: new(uint64(15))}),
	like(probe, packetCase{name: "ACK-4", length: 35, no: 1795379925, cmd: RecvMsg, ackNo: new(uint64(21))}),
	like(iptux010, packetCase{name: "ACK-5", no: 42, cmd: RecvMsg | SendCheckOpt, ackNo: new(uint64(1700000123))}),
	like(winUser, packetCase{name: "ACK-6", no: 1700000124, cmd: RecvMsg, ackNo: new(uint64(1700000123))}),
	like(winUser, packetCase{name: "ACK-7", no: 1700000125, cmd: ReadMsg | ReadCheckOpt, ackNo: new(uint64(1700000123))}),
	like(winUser, packetCase{name: "ACK-8", no: 1700000126, cmd: SendAbsenceInfo, text: &decoded{NotAbsence, Unknown}}),
	like(winUser, packetCase{name: "ACK-9", no: 1700000127, cmd: SendInfo, text: &decoded{"Win(en)Ver4.99r3(x64)", Unknown}}),
	like(winUser, packetCase{name: "ACK-10", no: 1700000129, cmd: GetPubKey, text: &decoded{"61900006", Unknown}}),

	// 4. Files
	like(iptux083, packetCase{name: "FILE-1", length: 79, no: 20, cmd: SendMsg | FileAttachOpt, text: &decoded{"", Unknown},
		files: []File{{ID: 10000, Name: "iptux-send-文件.txt", Size: 850, MTime: 0x6b0352b8, Attr: FileRegular}}}),
	like(iptux083, packetCase{name: "FILE-2", length: 77, no: 16, cmd: SendMsg | FileAttachOpt, text: &decoded{"", Unknown},
		files: []File{{ID: 10000, Name: "iptux-send-文件.txt", Size: 850, MTime: 0x6b03538a, Attr: FileRegular}}}),
	like(iptux083, packetCase{name: "FILE-2-note", length: 44, no: 17, cmd: SendMsg | SendCheckOpt,
		text: &decoded{"file note 文件", GB18030}}),
	like(iptux083, packetCase{name: "FILE-3", length: 41, no: 14, cmd: GetFileData,
		req: &FileRequest{Offer: 1795380095, ID: 0, Offset: 0}}),
	like(probe, packetCase{name: "FILE-4", length: 43, no: 1795380109, cmd: GetFileData,
		req: &FileRequest{Offer: 0x10, ID: 0x10000}}),
	like(probe, packetCase{name: "FILE-5", length: 93, no: 1795380095, cmd: SendMsg | SendCheckOpt | FileAttachOpt,
		text:  &decoded{"file for you", Unknown},
		files: []File{{ID: 0, Name: "probe-attach-测试.txt", Size: 2048, MTime: 0x6b03537a, Attr: FileRegular}}}),
	like(iptux083, packetCase{name: "FILE-5-ack", length: 40, no: 13, cmd: RecvMsg | SendCheckOpt, ackNo: new(uint64(1795380095))}),
	like(iptux010, packetCase{name: "FILE-9", no: 44, cmd: SendMsg | FileAttachOpt, text: &decoded{"", Unknown},
		files: []File{{ID: 10000, Name: "photo.jpg", Size: 0x1a2b3c, MTime: 0x65a1b2c3, Attr: FileRegular}}}),
	like(winUser, packetCase{name: "FILE-10", no: 1700000200, cmd: SendMsg | SendCheckOpt | FileAttachOpt | UTF8Opt | CapUTF8Opt,
		text: &decoded{"see attached", Unknown}, // ASCII shows no charset, flag or not
		files: []File{
			{ID: 123456789, Name: "report.pdf", Size: 1234, MTime: 0x65a1b2c3, Attr: FileRegular},
			{ID: 123456790, Name: "dir", Size: 0, MTime: 0x65a1b2c3, Attr: FileDir},
		}}),
	like(winUser, packetCase{name: "FILE-14", no: 1700000128, cmd: ReleaseFiles, ackNo: new(uint64(1700000100))}),
	like(winUser, packetCase{name: "FILE-15", no: 1700000300, cmd: GetFileData,
		req: &FileRequest{Offer: 0x6553f1a4, ID: 123456789}}),
	like(winUser, packetCase{name: "FILE-16", no: 1700000301, cmd: GetFileData | UTF8Opt,
		req: &FileRequest{Offer: 0x6553f1a4, ID: 123456789}}),
	like(iptux010, packetCase{name: "FILE-17", no: 45, cmd: GetFileData, req: &FileRequest{Offer: 0x2c, ID: 10000}}),
	like(iptux010, packetCase{name: "FILE-18", no: 46, cmd: GetFileData | FileAttachOpt, req: &FileRequest{Offer: 0x2c, ID: 10000}}),
	{name: "FILE-19", version: "1_lbt6_0#128#AABBCCDDEEFF#0#0#0#4001#9", no: 1700000302, user: "me", host: "mac",
		cmd: GetFileData, client: ClientFeiQ, versionOK: true, mac: "AABBCCDDEEFF",
		req: &FileRequest{Offer: 0x6553f1a4, ID: 123456789}},

	// 5. Folders
	like(iptux010, packetCase{name: "DIR-1", no: 47, cmd: GetDirFiles | FileAttachOpt,
		req: &FileRequest{Offer: 0x2c, ID: 0x2711, Dir: true}}),

	// 6. FeiQ extras
	{name: "FQ-1", version: "1_lbt6_0#128#000C294BBCAF#0#0#0#4001#9", no: 1652447021, user: "zz", host: "WIN10-WRK",
		cmd: FeiQKnock, client: ClientFeiQ, versionOK: true, mac: "000C294BBCAF", text: &decoded{"", Unknown}},
	{name: "FQ-2", version: "1_lbt4_0#128#000C29D68D8F#0#0#0#2.5a", no: 1399716676, user: "%s", host: "%s",
		cmd: FeiQKnock, client: ClientFeiQ, versionOK: true, mac: "000C29D68D8F", text: &decoded{".", Unknown}},
	like(feiqLee, packetCase{name: "FQ-5", no: 1655806000, cmd: FeiQSendImage | FileAttachOpt,
		text:    &decoded{"a3b4c5d6|353687|0|691|0|512|0|2|0|00000000#", Unknown},
		payload: "\xff\xd8\xff\xe0\x00\x10JF"}),
	like(feiqLee, packetCase{name: "FQ-7-typing", no: 1655806001, cmd: FeiQInputing, text: &decoded{"", Unknown}}),
	like(feiqLee, packetCase{name: "FQ-7-end", no: 1655806002, cmd: FeiQInputEnd, text: &decoded{"", Unknown}}),
	like(feiqLee, packetCase{name: "FQ-7-open", no: 1655806003, cmd: FeiQOpenYou, text: &decoded{"", Unknown}}),

	// 7. iptux extras
	like(iptux083, packetCase{name: "IPT-1", length: 44, no: 3, cmd: IptuxSendSign, text: &decoded{"interop-harness", Unknown}}),
	like(alice, packetCase{name: "IPT-2", no: 1, cmd: BrEntry | AbsenceOpt, entry: &Entry{User: "alice", Host: "box",
		Nick: "Alice", Group: "Dev", IptuxIcon: "icon-tux.png", IptuxEncoding: "utf-8"}}),
	like(alice, packetCase{name: "IPT-3", no: 2, cmd: IptuxSendSign, text: &decoded{"my signature", Unknown}}),
	like(alice, packetCase{name: "IPT-4", no: 3, cmd: IptuxSendIcon, text: &decoded{"", Unknown},
		payload: "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}),
	like(alice, packetCase{name: "IPT-5", no: 4, cmd: IptuxSublayer | 0x200, text: &decoded{"", Unknown},
		payload: "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}),
	like(alice, packetCase{name: "IPT-6", no: 5, cmd: IptuxSendMsg | IptuxGroupOpt, text: &decoded{"hello team", Unknown}}),
	like(alice, packetCase{name: "IPT-7", no: 6, cmd: IptuxAskShared | IptuxPasswdOpt, text: &decoded{"cGFzcw==", Unknown}}),
}

func TestPacketVectors(t *testing.T) {
	vectors := map[string][]byte{}
	for _, v := range loadVectors(t) {
		vectors[v.name] = v.data
	}
	for _, c := range packetCases {
		t.Run(c.name, func(t *testing.T) {
			b := vectors[c.name]
			if c.length != 0 && len(b) != c.length {
				t.Fatalf("vector is %d bytes, captured %d", len(b), c.length)
			}
			p, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkHeader(t, c, p)
			checkExtra(t, c, p)
			if got := p.Append(nil); !bytes.Equal(got, b) {
				t.Errorf("Append:\n got %q\nwant %q", got, b)
			}
			if q := p.Clone(); !reflect.DeepEqual(q, p) {
				t.Errorf("Clone = %+v, want %+v", q, p)
			}
		})
	}
}

func checkHeader(t *testing.T, c packetCase, p Packet) {
	t.Helper()
	if string(p.Version) != c.version || p.No != c.no || string(p.NoRaw) != strconv.FormatUint(c.no, 10) ||
		string(p.User) != c.user || string(p.Host) != c.host || p.Command != c.cmd {
		t.Errorf("header = %q:%d(%q):%q:%q:%v, want %q:%d:%q:%q:%v",
			p.Version, p.No, p.NoRaw, p.User, p.Host, p.Command, c.version, c.no, c.user, c.host, c.cmd)
	}
	if p.VersionOK() != c.versionOK {
		t.Errorf("VersionOK = %v, want %v", p.VersionOK(), c.versionOK)
	}
	if got := p.FeiQMAC(); got != c.mac {
		t.Errorf("FeiQMAC = %q, want %q", got, c.mac)
	}
	var e *Entry
	if p.Command.IsEntry() {
		e = new(ParseEntry(p, Unknown))
	}
	if got := DetectClient(p.Version, e); got != c.client {
		t.Errorf("DetectClient = %v, want %v", got, c.client)
	}
}

func checkExtra(t *testing.T, c packetCase, p Packet) {
	t.Helper()
	if c.entry != nil {
		if got := ParseEntry(p, Unknown); got != *c.entry {
			t.Errorf("ParseEntry:\n got %+v\nwant %+v", got, *c.entry)
		}
	}
	if c.text != nil {
		s, cs := DecodeText(p.Section(0), p.Command.Has(UTF8Opt), Unknown)
		if s != c.text.s || cs != c.text.cs {
			t.Errorf("text = %q (%v), want %q (%v)", s, cs, c.text.s, c.text.cs)
		}
	}
	if c.payload != "" {
		if _, got, _ := bytes.Cut(p.Extra, []byte{0}); string(got) != c.payload {
			t.Errorf("payload = %q, want %q", got, c.payload)
		}
	}
	if c.ackNo != nil {
		if n, err := p.NoExtra(); err != nil || n != *c.ackNo {
			t.Errorf("NoExtra = %d, %v; want %d", n, err, *c.ackNo)
		}
	}
	if c.files != nil {
		files, err := ParseFileList(p.Section(1), packetCharset(p))
		if err != nil || !equalFiles(files, c.files) {
			t.Errorf("ParseFileList = %+v, %v\nwant %+v", files, err, c.files)
		}
	}
	if c.req != nil {
		if r, err := ParseFileRequest(p); err != nil || r != *c.req {
			t.Errorf("ParseFileRequest = %+v, %v; want %+v", r, err, *c.req)
		}
	}
}

// packetCharset is the charset a receiver without history assumes.
func packetCharset(p Packet) Charset {
	if p.Command.Has(UTF8Opt) {
		return UTF8
	}
	return Unknown
}

func equalFiles(a, b []File) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

// TestOfferRebuild builds the offers of the vectors from their decoded values
// and compares every byte: the header, the text and AppendFileList's list.
func TestOfferRebuild(t *testing.T) {
	for _, c := range packetCases {
		if c.files == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			b := vectorBytes(t, c.name)
			p, _ := Parse(b)
			cs := packetCharset(p)
			if c.name == "FILE-2" {
				cs = GB18030 // iptux had switched this peer to GBK
			}
			extra := append(cs.Encode(c.text.s), 0)
			extra = AppendFileList(extra, c.files, cs)
			if bytes.HasSuffix(b, []byte("\a\x00")) { // iptux and the LAN-in offers end in NUL; W's does not
				extra = append(extra, 0)
			}
			q := Packet{Version: []byte(c.version), No: c.no, User: []byte(c.user), Host: []byte(c.host), Command: c.cmd, Extra: extra}
			if got := q.Append(nil); !bytes.Equal(got, b) {
				t.Errorf("rebuilt offer:\n got %q\nwant %q", got, b)
			}
		})
	}
}

func TestIPDictVector(t *testing.T) {
	_, err := Parse(vectorBytes(t, "DICT-1"))
	if !errors.Is(err, ErrIPDict) {
		t.Fatalf("Parse(DICT-1) error = %v, want ErrIPDict", err)
	}
}

// fileListCase is a vector that is a file list, or an extra holding one.
type fileListCase struct {
	name  string
	extra bool   // the vector is text \0 list
	files []File // ParseFileList(…, UTF8)
	out   string // AppendFileList of files: the vector itself where the shapes agree
}

var fileListCases = []fileListCase{
	{name: "FILE-6",
		files: []File{{ID: 0, Name: "bashrc", Size: 1<<64 - 1, Attr: FileRegular}},
		out:   "0:bashrc:ffffffffffffffff:0:1:\a"}, // iptux's test adds ':' after '\a'
	{name: "FILE-7",
		files: []File{{Name: "bashrc", Size: 1<<64 - 1, Attr: FileRegular}, {Name: "bashrc", Size: 1<<64 - 1, Attr: FileRegular}},
		out:   "0:bashrc:ffffffffffffffff:0:1:\a0:bashrc:ffffffffffffffff:0:1:\a"},
	{name: "FILE-8", files: []File{}, out: ""}, // attr 0: skipped, as by iptux and W
	{name: "FILE-11",
		files: []File{{ID: 5, Name: "read-only.txt", Size: 0x10, MTime: 0x65a1b2c3, Attr: FileRegular | FileReadOnly}},
		out:   "5:read-only.txt:10:65a1b2c3:1:\a"}, // flag bits masked for iptux
	{name: "FILE-12",
		files: []File{{ID: 7, Name: "image.png", Size: 0x5f3e, MTime: 0x65a1b2c3, Attr: FileClipboard,
			Ext: []ExtAttr{{Key: FileExtClipboardPos, Values: []uint64{3}}}}},
		out: "7:image.png:5f3e:65a1b2c3:20:8=3:\a"},
	{name: "FILE-13", extra: true,
		files: []File{{ID: 1, Name: "a:b.txt", Size: 3, Attr: FileRegular}},
		out:   "1:a::b.txt:3:0:1:\a"},
}

func TestFileListVectors(t *testing.T) {
	for _, c := range fileListCases {
		t.Run(c.name, func(t *testing.T) {
			list := vectorBytes(t, c.name)
			if c.extra {
				list = Packet{Extra: list}.Section(1)
			}
			files, err := ParseFileList(list, UTF8)
			if err != nil || !equalFiles(files, c.files) {
				t.Fatalf("ParseFileList = %+v, %v\nwant %+v", files, err, c.files)
			}
			if got := AppendFileList(nil, files, UTF8); string(got) != c.out {
				t.Errorf("AppendFileList = %q, want %q", got, c.out)
			}
		})
	}
}

// dirCase is a vector of folder stream bytes: its headers and the content of
// each regular file, read in turn.
type dirCase struct {
	name    string
	headers []DirHeader
	content []string // per header; "" for none
}

var (
	docsDir  = DirHeader{Name: "docs", Attr: FileDir, MTime: 0x65a1b2c3, CTime: 0x65a1b2c3}
	aTxt     = DirHeader{Name: "a.txt", Size: 5, Attr: FileRegular, MTime: 0x65a1b2c3, CTime: 0x65a1b2c3}
	retTimed = DirHeader{Name: ".", Attr: FileRetParent, MTime: 0x65a1b2c3, CTime: 0x65a1b2c3}
	retBare  = DirHeader{Name: ".", Attr: FileRetParent}
)

var dirCases = []dirCase{
	{name: "DIR-2", headers: []DirHeader{docsDir}, content: []string{""}},
	{name: "DIR-3", headers: []DirHeader{aTxt}, content: []string{"hello"}},
	{name: "DIR-4", headers: []DirHeader{retTimed}, content: []string{""}},
	{name: "DIR-5", headers: []DirHeader{retBare}, content: []string{""}},
	{name: "DIR-6", headers: []DirHeader{docsDir, aTxt, retTimed}, content: []string{"", "hello", ""}},
}

// TestDirVectors reads each stream header by header, checks that the length
// prefix is the header's length and that no content was consumed with the
// header, and rebuilds the stream byte for byte with AppendDirHeader.
func TestDirVectors(t *testing.T) {
	for _, c := range dirCases {
		t.Run(c.name, func(t *testing.T) {
			b := vectorBytes(t, c.name)
			src := bytes.NewReader(b)
			r := bufio.NewReader(src)
			unread := func() int { return r.Buffered() + src.Len() }
			var rebuilt []byte
			for i, want := range c.headers {
				before := unread()
				h, err := ReadDirHeader(r, UTF8)
				if err != nil || h != want {
					t.Fatalf("header %d = %+v, %v; want %+v", i, h, err, want)
				}
				start := len(rebuilt)
				rebuilt = AppendDirHeader(rebuilt, h, UTF8)
				hdr := rebuilt[start:]
				if n, _ := strconv.ParseUint(string(hdr[:4]), 16, 32); int(n) != len(hdr) || before-unread() != len(hdr) {
					t.Errorf("header %d: prefix %q, %d bytes written, %d read", i, hdr[:4], len(hdr), before-unread())
				}
				content := make([]byte, h.Size)
				if _, err := io.ReadFull(r, content); err != nil || string(content) != c.content[i] {
					t.Fatalf("content %d = %q, %v; want %q", i, content, err, c.content[i])
				}
				rebuilt = append(rebuilt, content...)
			}
			if _, err := ReadDirHeader(r, UTF8); err != io.EOF {
				t.Errorf("after the stream: %v, want io.EOF", err)
			}
			if !bytes.Equal(rebuilt, b) {
				t.Errorf("rebuilt stream:\n got %q\nwant %q", rebuilt, b)
			}
		})
	}
}

// TestFileRequestVectors checks AppendFileRequest against W's request (the
// portable shape) and ReadFileRequest on every request vector, followed by
// bytes that must stay unread.
func TestFileRequestVectors(t *testing.T) {
	for _, c := range packetCases {
		if c.req == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			b := vectorBytes(t, c.name)
			want, _ := Parse(b)
			out := AppendFileRequest(nil, *c.req)
			if c.name == "FILE-15" || c.name == "FILE-16" {
				if !bytes.Equal(out, want.Extra) {
					t.Errorf("AppendFileRequest = %q, want W's %q", out, want.Extra)
				}
			}
			if r, err := ParseFileRequest(Packet{Command: c.req.Command(), Extra: out}); err != nil || r != *c.req {
				t.Errorf("ParseFileRequest(AppendFileRequest) = %+v, %v", r, err)
			}
			checkReadFileRequest(t, b, *c.req)
		})
	}
}

func checkReadFileRequest(t *testing.T, b []byte, want FileRequest) {
	t.Helper()
	const after = "CONTENT"
	r := bufio.NewReader(bytes.NewReader(append(bytes.Clone(b), after...)))
	p, req, err := ReadFileRequest(r)
	if err != nil || req != want {
		t.Fatalf("ReadFileRequest = %+v, %v; want %+v", req, err, want)
	}
	rest, _ := io.ReadAll(r)
	read := len(b) + len(after) - len(rest)
	if !bytes.Equal(p.Append(nil), b[:read]) || !strings.HasSuffix(string(rest), after) {
		t.Errorf("read %q, left %q", b[:read], rest)
	}
	// Only what follows the last argument may stay unread: a NUL after
	// W's ':' (FeiQ) or iptux's ":0" after a GETDIRFILES.
	if left := strings.TrimSuffix(string(rest), after); left != "" && left != "\x00" && left != "0\x00" {
		t.Errorf("left %q of the request unread", left)
	}
}
