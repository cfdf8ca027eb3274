package ipmsg

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseFileRequest(t *testing.T) {
	tests := []struct {
		name  string
		cmd   Command
		extra string
		want  FileRequest
	}{
		{"W", GetFileData, "6553f1a4:75bcd15:0:", FileRequest{Offer: 0x6553f1a4, ID: 0x75bcd15}},
		{"iptux", GetFileData, "2c:2710:0\x00", FileRequest{Offer: 0x2c, ID: 0x2710}},
		{"FeiQ clone", GetFileData, "6553f1a4:75bcd15:0:\x00", FileRequest{Offer: 0x6553f1a4, ID: 0x75bcd15}},
		{"offset", GetFileData, "1:2:1000:", FileRequest{Offer: 1, ID: 2, Offset: 0x1000}},
		{"no offset", GetFileData, "1:2:", FileRequest{Offer: 1, ID: 2}},
		{"upper case", GetFileData, "AB:CD:EF", FileRequest{Offer: 0xab, ID: 0xcd, Offset: 0xef}},
		{"W folder", GetDirFiles, "2c:2711:", FileRequest{Offer: 0x2c, ID: 0x2711, Dir: true}},
		{"iptux folder", GetDirFiles | FileAttachOpt, "2c:2711:0\x00", FileRequest{Offer: 0x2c, ID: 0x2711, Dir: true}},
		{"64-bit", GetFileData, "ffffffffffffffff:1:0", FileRequest{Offer: 1<<64 - 1, ID: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseFileRequest(Packet{Command: tt.cmd, Extra: []byte(tt.extra)})
			if err != nil || r != tt.want {
				t.Errorf("ParseFileRequest(%q) = %+v, %v; want %+v", tt.extra, r, err, tt.want)
			}
		})
	}
}

func TestParseFileRequestErrors(t *testing.T) {
	tests := []struct {
		name  string
		cmd   Command
		extra string
		msg   string
	}{
		{"not a request", SendMsg, "1:2:0:", "command SENDMSG"},
		{"one argument", GetFileData, "1:", "1 arguments, want 2 or 3"},
		{"empty", GetFileData, "", "1 arguments"},
		{"four arguments", GetFileData, "1:2:3:4:", "more than 3 arguments"},
		{"signed request", GetFileData, "1:2:0:900000:abcd:", "more than 3 arguments"},
		{"empty id", GetFileData, "1::0:", `id ""`},
		{"two colons at the end", GetFileData, "1:2::", `offset ""`},
		{"bad offer", GetDirFiles, "x:2:", `offer "x"`},
		{"overflow", GetFileData, "1:10000000000000000:0", "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFileRequest(Packet{Command: tt.cmd, Extra: []byte(tt.extra)})
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %v, want ErrMalformed containing %q", err, tt.msg)
			}
		})
	}
}

func TestAppendFileRequest(t *testing.T) {
	tests := []struct {
		name string
		r    FileRequest
		want string
		cmd  Command
	}{
		{"file", FileRequest{Offer: 0x10, ID: 10000}, "10:2710:0:", GetFileData},
		{"resume", FileRequest{Offer: 0x10, ID: 1, Offset: 0x800}, "10:1:800:", GetFileData},
		{"folder drops offset", FileRequest{Offer: 0x2c, ID: 0x2711, Offset: 5, Dir: true}, "2c:2711:", GetDirFiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendFileRequest(nil, tt.r); string(got) != tt.want || tt.r.Command() != tt.cmd {
				t.Errorf("AppendFileRequest = %q, %v; want %q, %v", got, tt.r.Command(), tt.want, tt.cmd)
			}
		})
	}
}

func TestIDCandidates(t *testing.T) {
	tests := []struct {
		id   uint64
		want []uint64
	}{
		{0x10000, []uint64{0x10000, 10000}}, // FILE-4: the offer's decimal digits
		{0x2710, []uint64{0x2710, 2710}},
		{0x75bcd15, []uint64{0x75bcd15}}, // hex letters: hex only
		{7, []uint64{7}},
		{0, []uint64{0}},
		{0x9999999999999999, []uint64{0x9999999999999999, 9999999999999999}},
	}
	for _, tt := range tests {
		if got := (FileRequest{ID: tt.id}).IDCandidates(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("IDCandidates(%#x) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestReadFileRequestErrors(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		is     error
	}{
		{"closed at once", "", io.EOF},
		{"closed in the header", "1:2:u:h", io.ErrUnexpectedEOF},
		{"closed after a colon", "1:2:u:h:96:10:", io.ErrUnexpectedEOF},
		{"not a request", "1:2:u:h:32:hello\x00", ErrMalformed},
		{"ipdict", "IP2:3d:key1:3:3e8:Z", ErrIPDict},
		{"bad argument", "1:2:u:h:96:1:x:0:", ErrMalformed},
		{"endless header", "1:2:" + strings.Repeat("u", MaxFileRequest), ErrTooLarge},
		{"endless argument", "1:2:u:h:96:" + strings.Repeat("1", MaxFileRequest), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadFileRequest(bufio.NewReader(strings.NewReader(tt.stream)))
			if !errors.Is(err, tt.is) {
				t.Errorf("error = %v, want %v", err, tt.is)
			}
		})
	}
}

// TestReadFileRequestEOF accepts a request whose sender closed its side
// right after the last digit, with no ':' or NUL.
func TestReadFileRequestEOF(t *testing.T) {
	p, r, err := ReadFileRequest(bufio.NewReader(strings.NewReader("1:2:u:h:96:a:b:c")))
	if err != nil || r != (FileRequest{Offer: 0xa, ID: 0xb, Offset: 0xc}) || string(p.User) != "u" {
		t.Errorf("ReadFileRequest = %+v, %+v, %v", p, r, err)
	}
}

// TestReadFileRequestByteByByte reads from a connection that delivers one
// byte per read, as a slow TCP peer might.
func TestReadFileRequestByteByByte(t *testing.T) {
	src := "1:1700000300:user:host:96:6553f1a4:75bcd15:0:file bytes"
	r := bufio.NewReader(&oneByteReader{strings.NewReader(src)})
	_, req, err := ReadFileRequest(r)
	if err != nil || req.ID != 123456789 {
		t.Fatalf("ReadFileRequest = %+v, %v", req, err)
	}
	if rest, _ := io.ReadAll(r); !bytes.Equal(rest, []byte("file bytes")) {
		t.Errorf("left %q", rest)
	}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }
