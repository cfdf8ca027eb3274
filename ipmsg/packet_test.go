package ipmsg

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		b    string
		err  error
		msg  string // part of the message
	}{
		{"empty", "", ErrMalformed, "0 header fields, want 5"},
		{"four fields", "1:2:u:h", ErrMalformed, "3 header fields, want 5"},
		{"no command colon", "1:2:u:h:32", ErrMalformed, "4 header fields"},
		{"packet number", "1:x2:u:h:32:", ErrMalformed, `packet number "x2"`},
		{"negative packet number", "1:-2:u:h:32:", ErrMalformed, `packet number "-2"`},
		{"empty command", "1:2:u:h::", ErrMalformed, `command ""`},
		{"command overflow", "1:2:u:h:99999999999999999999999:", ErrMalformed, "command"},
		{"ipdict", "IP2:3d:key1:3:3e8:Z", ErrIPDict, "IPDict"},
		{"too large", "1:2:u:h:32:" + strings.Repeat("x", MaxDatagram), ErrTooLarge, "65518 bytes, limit 65507"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.b))
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Parse error = %v, want %v containing %q", err, tt.err, tt.msg)
			}
		})
	}
}

func TestParseLenient(t *testing.T) {
	tests := []struct {
		name string
		b    string
		no   uint64
		cmd  Command
	}{
		{"leading zeros", "1:007:u:h:0032:x", 7, SendMsg},
		{"command wider than 32 bits", "1:1:u:h:4294967329:", 1, 33}, // truncated like W's atol
		{"empty fields", ":1:::0:", 1, NoOperation},
		{"64-bit packet number", "1:18446744073709551615:u:h:32:", 1<<64 - 1, SendMsg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.b))
			if err != nil || p.No != tt.no || p.Command != tt.cmd {
				t.Errorf("Parse = %d, %v, %v; want %d, %v", p.No, p.Command, err, tt.no, tt.cmd)
			}
		})
	}
}

// TestParseFieldsCapped checks that appending to a parsed field cannot
// overwrite the rest of the datagram.
func TestParseFieldsCapped(t *testing.T) {
	b := []byte("1:5:user:host:32:text")
	p, _ := Parse(b)
	_ = append(p.User, "XXXXXXXX"...)
	_ = append(p.Version, "YY"...)
	if string(b) != "1:5:user:host:32:text" {
		t.Errorf("input overwritten: %q", b)
	}
}

func TestClone(t *testing.T) {
	b := []byte("1:5:user:host:32:text\x00")
	p, _ := Parse(b)
	q := p.Clone()
	for i := range b {
		b[i] = 'X'
	}
	if string(q.Version) != "1" || string(q.NoRaw) != "5" || string(q.User) != "user" ||
		string(q.Host) != "host" || string(q.Extra) != "text\x00" || q.No != 5 || q.Command != SendMsg {
		t.Errorf("Clone shares the input: %+v", q)
	}
	_ = append(q.User, "ZZZZ"...)
	if string(q.Host) != "host" {
		t.Errorf("appending to User overwrote Host: %q", q.Host)
	}
	// A packet Parse would refuse still clones: Clone used to return a
	// zero Packet for an Extra above MaxDatagram.
	big := Packet{Version: []byte("1"), No: 9, Command: SendMsg, Extra: bytes.Repeat([]byte("x"), MaxDatagram)}
	if c := big.Clone(); len(c.Extra) != MaxDatagram || c.No != 9 || c.Command != SendMsg {
		t.Errorf("Clone of a large packet: %d bytes, No %d, %v", len(c.Extra), c.No, c.Command)
	}
}

func TestSections(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  []string
	}{
		{"none", "", nil},
		{"no trailing nul", "a\x00b", []string{"a", "b"}},
		{"trailing nul", "a\x00b\x00", []string{"a", "b"}},
		{"W retry padding", "a\x00b" + strings.Repeat("\x00", 64), []string{"a", "b"}},
		{"empty first", "\x00list\x00", []string{"", "list"}},
		{"empty middle", "nick\x00\x00\nUN:u", []string{"nick", "", "\nUN:u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packet{Extra: []byte(tt.extra)}
			got := p.Sections()
			if len(got) != len(tt.want) {
				t.Fatalf("Sections = %q, want %q", got, tt.want)
			}
			for i := range got {
				if string(got[i]) != tt.want[i] || string(p.Section(i)) != tt.want[i] {
					t.Errorf("section %d = %q / %q, want %q", i, got[i], p.Section(i), tt.want[i])
				}
			}
			if s := p.Section(len(tt.want)); len(s) != 0 {
				t.Errorf("Section past the end = %q, want none", s)
			}
		})
	}
}

// TestControlPackets builds the small control packets as lanchat sends
// them and parses them back: GETINFO/SENDINFO, GETABSENCEINFO/
// SENDABSENCEINFO, READMSG/ANSREADMSG, RECVMSG, RELEASEFILES and GETLIST.
// Where a vector exists the bytes must match it.
func TestControlPackets(t *testing.T) {
	tests := []struct {
		name   string
		no     uint64
		cmd    Command
		extra  []byte
		wire   string // the vector or derived bytes
		text   string // first section, for text replies
		extraN uint64 // NoExtra, for PacketNo replies
	}{
		{"GETINFO", 1700000130, GetInfo, []byte{0}, "1:1700000130:user:host:64:\x00", "", 0},
		{"SENDINFO (ACK-9)", 1700000127, SendInfo, []byte("Win(en)Ver4.99r3(x64)\x00"),
			"1:1700000127:user:host:65:Win(en)Ver4.99r3(x64)\x00", "Win(en)Ver4.99r3(x64)", 0},
		{"GETABSENCEINFO", 1700000131, GetAbsenceInfo, []byte{0}, "1:1700000131:user:host:80:\x00", "", 0},
		{"SENDABSENCEINFO (ACK-8)", 1700000126, SendAbsenceInfo, append([]byte(NotAbsence), 0),
			"1:1700000126:user:host:81:Not Absence mode\x00", NotAbsence, 0},
		{"READMSG (ACK-7)", 1700000125, ReadMsg | ReadCheckOpt, AppendNo(nil, 1700000123),
			"1:1700000125:user:host:1048624:1700000123\x00", "", 1700000123},
		{"ANSREADMSG", 1700000132, AnsReadMsg, AppendNo(nil, 1700000125),
			"1:1700000132:user:host:50:1700000125\x00", "", 1700000125},
		{"RECVMSG (ACK-6)", 1700000124, RecvMsg, AppendNo(nil, 1700000123),
			"1:1700000124:user:host:33:1700000123\x00", "", 1700000123},
		{"RELEASEFILES (FILE-14)", 1700000128, ReleaseFiles, AppendNo(nil, 1700000100),
			"1:1700000128:user:host:97:1700000100\x00", "", 1700000100},
		{"GETLIST", 1700000133, GetList, AppendNo(nil, 100), "1:1700000133:user:host:18:100\x00", "", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packet{Version: []byte(Version), No: tt.no, User: []byte("user"), Host: []byte("host"), Command: tt.cmd, Extra: tt.extra}
			if got := p.Append(nil); string(got) != tt.wire {
				t.Fatalf("Append = %q, want %q", got, tt.wire)
			}
			q, err := Parse([]byte(tt.wire))
			if err != nil || q.Command != tt.cmd || string(q.Section(0)) != tt.text && tt.extraN == 0 {
				t.Fatalf("Parse = %v %q, %v", q.Command, q.Section(0), err)
			}
			if n, err := q.NoExtra(); tt.extraN != 0 && (n != tt.extraN || err != nil) {
				t.Errorf("NoExtra = %d, %v; want %d", n, err, tt.extraN)
			}
		})
	}
}

func TestNoExtraErrors(t *testing.T) {
	for _, extra := range []string{"", "\x00", "12a\x00", "-1", "99999999999999999999999"} {
		p := Packet{Command: RecvMsg, Extra: []byte(extra)}
		if _, err := p.NoExtra(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "RECVMSG") {
			t.Errorf("NoExtra(%q) error = %v", extra, err)
		}
	}
}

// TestEntryRoundTrip builds lanchat's own entry and reads it back as a peer
// would, through the legacy sections and the UTF-8 block.
func TestEntryRoundTrip(t *testing.T) {
	e := Entry{User: "li", Host: "pc-1", Nick: "小李", Group: "研发", VS: VSLanchat, Lanchat: "1",
		PeerID: "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"}
	p := Packet{Version: []byte(Version), No: 1, User: []byte(HeaderName(e.User)), Host: []byte(HeaderName("pc:1")),
		Command: BrEntry | FileAttachOpt | CapUTF8Opt, Extra: AppendEntryExtra(nil, e, GB18030)}
	q, err := Parse(p.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := ParseEntry(q, GB18030)
	want := e
	want.HasUTF8Block, want.Legacy = true, GB18030
	if got != want {
		t.Errorf("ParseEntry = %+v, want %+v", got, want)
	}
	if string(q.Host) != "pc;1" || string(q.Section(0)) != "\xd0\xa1\xc0\xee" {
		t.Errorf("host %q, legacy nick %q", q.Host, q.Section(0))
	}
	if DetectClient(q.Version, &got) != ClientLanchat {
		t.Error("not detected as lanchat")
	}
	// The identity is one more key of the UTF-8 block, after every key IP
	// Messenger and Feige read: they skip keys they do not know.
	wantExtra := "\xd0\xa1\xc0\xee\x00\xd1\xd0\xb7\xa2\x00\nUN:li\nHN:pc-1\nNN:小李\nGN:研发\nVS:00500000:0:1:100" +
		"\nLC:1\nID:12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf\x00"
	if string(p.Extra) != wantExtra {
		t.Errorf("extra = %q, want %q", p.Extra, wantExtra)
	}
	// A receiver that knows only IP Messenger's keys reads the same person.
	old := ParseEntry(q, GB18030)
	if old.Nick != e.Nick || old.User != e.User || old.Group != e.Group {
		t.Errorf("entry without the ID key read as %+v", old)
	}
}
