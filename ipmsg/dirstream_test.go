package ipmsg

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadDirHeader(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		cs     Charset
		want   DirHeader
	}{
		{"W size split in dwords", "0023:a.txt:000001234:101:14=1:16=2:", UTF8,
			DirHeader{Name: "a.txt", Size: 0x1234, Attr: FileRegular | FileReadOnly, MTime: 1, CTime: 2}},
		{"short length prefix", "1b:b:5:1:14=65a1b2c3:16=10:", UTF8, DirHeader{Name: "b", Size: 5, Attr: FileRegular, MTime: 0x65a1b2c3, CTime: 0x10}},
		{"long length prefix", "0000000f:c:0:2:", UTF8, DirHeader{Name: "c", Attr: FileDir}},
		{"colon in name", "000f:a:b:c:0:2:", UTF8, DirHeader{Name: "a:b:c", Attr: FileDir}},
		{"equals in name", "000d:x=1:5:1:", UTF8, DirHeader{Name: "x=1", Size: 5, Attr: FileRegular}},
		{"other ext attrs", "001c:d:0:2:1=3e8:16=7:bad=z:", UTF8, DirHeader{Name: "d", Attr: FileDir, CTime: 7}},
		{"empty name", "000a::0:2:", UTF8, DirHeader{Attr: FileDir}},
		{"gbk name", "000e:\xce\xc4\xbc\xfe:0:2:", GB18030, DirHeader{Name: "文件", Attr: FileDir}},
		{"W utf-8 name", "0010:\xe6\x96\x87\xe4\xbb\xb6:0:2:", UTF8, DirHeader{Name: "文件", Attr: FileDir}},
		{"cp932 name", "000c:\x93\xfa:0:2:", CP932, DirHeader{Name: "日", Attr: FileDir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.stream + "CONTENT"))
			h, err := ReadDirHeader(r, tt.cs)
			if err != nil || h != tt.want {
				t.Fatalf("ReadDirHeader = %+v, %v; want %+v", h, err, tt.want)
			}
			if rest, _ := io.ReadAll(r); string(rest) != "CONTENT" {
				t.Errorf("left %q, want the content untouched", rest)
			}
		})
	}
}

func TestReadDirHeaderErrors(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		is     error
		msg    string
	}{
		{"clean end", "", io.EOF, "EOF"},
		{"end in length", "00", io.ErrUnexpectedEOF, "read folder header"},
		{"end in header", "002e:docs:000", io.ErrUnexpectedEOF, "read folder header"},
		{"no length", ":a:0:2:", ErrMalformed, "after 0 digits"},
		{"length not hex", "00x1:a:0:2:", ErrMalformed, `byte "x" after 2 digits`},
		{"length too long", "000000001:", ErrMalformed, "after 8 digits"},
		{"length over limit", "1001:", ErrTooLarge, "folder header of 4097 bytes, limit 4096"},
		{"huge length", "ffffffff:", ErrTooLarge, "4294967295 bytes, limit 4096"},
		{"length too short", "0005:", ErrMalformed, "length 5 shorter than its 5-byte prefix"},
		{"length too small for header", "000b:docs:0:2:", ErrMalformed, "does not end with ':'"},
		{"length too large for header", "000f:docs:0:2:hello", ErrMalformed, "does not end with ':'"},
		{"no size", "000a:docs:", ErrMalformed, "want name:size:attr"},
		{"bad size", "000c:a:0x:2:", ErrMalformed, `size "0x"`},
		{"bad attr", "000c:a:0:2x:", ErrMalformed, `attr "2x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadDirHeader(bufio.NewReader(strings.NewReader(tt.stream)), UTF8)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %v, want %v containing %q", err, tt.is, tt.msg)
			}
		})
	}
}

func TestAppendDirHeader(t *testing.T) {
	tests := []struct {
		name string
		h    DirHeader
		cs   Charset
		want string
	}{
		{"iptux file", DirHeader{Name: "a.txt", Size: 5, Attr: FileRegular, MTime: 0x65a1b2c3, CTime: 0x65a1b2c3}, UTF8,
			"002f:a.txt:000000005:1:14=65a1b2c3:16=65a1b2c3:"},
		{"big file", DirHeader{Name: "big", Size: 0x123456789ab, Attr: FileRegular}, UTF8, "0017:big:123456789ab:1:"},
		{"colon in name", DirHeader{Name: "a:b", Attr: FileDir}, UTF8, "0015:a_b:000000000:2:"},
		{"W retparent", DirHeader{Name: ".", Attr: FileRetParent}, UTF8, "000b:.:0:3:"},
		{"gbk", DirHeader{Name: "文件", Attr: FileDir}, GB18030, "0016:\xce\xc4\xbc\xfe:000000000:2:"},
		{"flags kept", DirHeader{Name: "h", Attr: FileRegular | FileHidden}, UTF8, "0016:h:000000000:1001:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendDirHeader([]byte("prev"), tt.h, tt.cs); string(got) != "prev"+tt.want {
				t.Errorf("AppendDirHeader = %q, want %q", got, "prev"+tt.want)
			}
		})
	}
}

// TestAppendDirHeaderWide checks the length of a header too long for four
// hex digits: the prefix widens and still counts itself.
func TestAppendDirHeaderWide(t *testing.T) {
	for _, n := range []int{0xffff - 20, 0xffff - 19, 0xffff - 18, 0x10000, 0xfffff} {
		h := DirHeader{Name: strings.Repeat("n", n), Attr: FileDir}
		b := AppendDirHeader([]byte("x"), h, UTF8)[1:]
		prefix, _, _ := strings.Cut(string(b), ":")
		got, err := parseHex([]byte(prefix), 64)
		if err != nil || int(got) != len(b) || len(prefix) < 4 {
			t.Errorf("name of %d bytes: prefix %q for %d bytes", n, prefix, len(b))
		}
	}
}
