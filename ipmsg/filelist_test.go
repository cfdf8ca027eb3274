package ipmsg

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFileList(t *testing.T) {
	tests := []struct {
		name  string
		list  string
		cs    Charset
		files []File
	}{
		{"W separator before the ID", "1:a:1:0:1\a:2:b:2:0:1:\a", UTF8,
			[]File{{ID: 1, Name: "a", Size: 1, Attr: FileRegular}, {ID: 2, Name: "b", Size: 2, Attr: FileRegular}}},
		{"no final separator", "3:c:ff:0:2:", UTF8, []File{{ID: 3, Name: "c", Size: 255, Attr: FileDir}}},
		{"trailing nuls", "3:c:ff:0:2:\a\x00\x00", UTF8, []File{{ID: 3, Name: "c", Size: 255, Attr: FileDir}}},
		{"upper-case hex", "3:c:FF:ABC:2:\a", UTF8, []File{{ID: 3, Name: "c", Size: 255, MTime: 0xabc, Attr: FileDir}}},
		{"escaped colons", "0:::a::::b:::1:0:1:\a", UTF8, []File{{Name: ":a::b:", Size: 1, Attr: FileRegular}}},
		{"symlink and fifo skipped", "0:l:0:0:4:\a1:f:0:0:7:\a2:r:0:0:3:\a3:ok:0:0:1:\a", UTF8,
			[]File{{ID: 3, Name: "ok", Attr: FileRegular}}},
		{"windows flags kept", "0:sys:1:0:8001:\a", UTF8, []File{{Name: "sys", Size: 1, Attr: FileRegular | FileSystem}}},
		{"gbk name", "0:\xce\xc4\xbc\xfe.txt:1:0:1:\a", GB18030, []File{{Name: "文件.txt", Size: 1, Attr: FileRegular}}},
		{"gbk name, charset unknown", "0:\xce\xc4\xbc\xfe.txt:1:0:1:\a", Unknown, []File{{Name: "文件.txt", Size: 1, Attr: FileRegular}}},
		{"utf-8 name from a gbk peer (iptux)", "0:\xe6\x96\x87.txt:1:0:1:\a", GB18030, []File{{Name: "文.txt", Size: 1, Attr: FileRegular}}},
		{"cp932 name", "0:\x93\xfa.txt:1:0:1:\a", CP932, []File{{Name: "日.txt", Size: 1, Attr: FileRegular}}},
		{"negative mtime", "0:a:1:ffffffffffffffff:1:\a", UTF8, []File{{Name: "a", Size: 1, MTime: -1, Attr: FileRegular}}},
		{"ext attrs", "0:a:1:0:1:14=65a1b2c3:22=1,2,3:\a", UTF8, []File{{Name: "a", Size: 1, Attr: FileRegular,
			Ext: []ExtAttr{{FileExtMTime, []uint64{0x65a1b2c3}}, {FileExtFinderInfo, []uint64{1, 2, 3}}}}}},
		{"unreadable ext attrs ignored", "0:a:1:0:1:41=name.txt:x=1:junk::8=3:\a", UTF8, []File{{Name: "a", Size: 1, Attr: FileRegular,
			Ext: []ExtAttr{{FileExtClipboardPos, []uint64{3}}}}}},
		{"empty", "", UTF8, []File{}},
		{"separators only", "\a:\a\a", UTF8, []File{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := ParseFileList([]byte(tt.list), tt.cs)
			if err != nil || !equalFiles(files, tt.files) {
				t.Errorf("ParseFileList(%q) = %+v, %v\nwant %+v", tt.list, files, err, tt.files)
			}
		})
	}
}

func TestParseFileListErrors(t *testing.T) {
	tests := []struct {
		name string
		list string
		err  error
		msg  string
	}{
		{"decimal id", "0:a:1:0:1:\ax:b:1:0:1:\a", ErrMalformed, `file list entry 1: id "x"`},
		{"hex id", "a:b:1:0:1:\a", ErrMalformed, `entry 0: id "a"`},
		{"no size", "0:name", ErrMalformed, "entry 0: no size"},
		{"missing attr", "0:a:1:0\a", ErrMalformed, "entry 0: no attr"},
		{"empty attr", "0:a:1:0::\a", ErrMalformed, "entry 0: no attr"},
		{"bad size", "0:a:1g:0:1:\a", ErrMalformed, `entry 0: size "1g"`},
		{"size overflow", "0:a:10000000000000000:0:1:\a", ErrMalformed, "entry 0: size"},
		{"attr over 32 bits", "0:a:1:0:100000000:\a", ErrMalformed, "entry 0: attr"},
		{"bad mtime", "0:a:1:-1:1:\a", ErrMalformed, `entry 0: mtime "-1"`},
		{"empty name", "0::1:0:1:\a", ErrMalformed, "entry 0: empty name"},
		{"long name", "0:" + strings.Repeat("n", MaxFileName+1) + ":1:0:1:\a", ErrTooLarge, "entry 0: name of 1025 bytes, limit 1024"},
		{"too many entries", strings.Repeat("0:a:1:0:1:\a", MaxFiles+1), ErrTooLarge, "file list of 2049 entries, limit 2048"},
		{"too many ext attrs", "0:a:1:0:1:" + strings.Repeat("1=1:", 33) + "\a", ErrTooLarge, "entry 0: 33 extended attributes, limit 32"},
		{"too many ext values", "0:a:1:0:1:1=" + strings.Repeat("1,", 32) + "1:\a", ErrTooLarge, "33 values, limit 32"},
		{"too large", strings.Repeat("x", MaxDatagram+1), ErrTooLarge, "file list of 65508 bytes, limit 65507"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFileList([]byte(tt.list), UTF8)
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %v, want %v containing %q", err, tt.err, tt.msg)
			}
		})
	}
}

func TestAppendFileList(t *testing.T) {
	tests := []struct {
		name  string
		files []File
		cs    Charset
		want  string
	}{
		{"iptux shape", []File{{ID: 10000, Name: "photo.jpg", Size: 0x1a2b3c, MTime: 0x65a1b2c3, Attr: FileRegular}}, UTF8,
			"10000:photo.jpg:1a2b3c:65a1b2c3:1:\a"},
		{"flags masked", []File{{ID: 1, Name: "r", Size: 1, Attr: FileRegular | FileReadOnly | FileHidden}}, UTF8, "1:r:1:0:1:\a"},
		{"colon escaped", []File{{ID: 1, Name: "a:b", Attr: FileRegular}}, UTF8, "1:a::b:0:0:1:\a"},
		{"separators replaced", []File{{ID: 1, Name: "a\ab\x00c", Attr: FileRegular}}, UTF8, "1:a_b_c:0:0:1:\a"},
		{"empty name", []File{{ID: 1, Attr: FileDir}}, UTF8, "1:_:0:0:2:\a"},
		{"gbk", []File{{ID: 0, Name: "文件.txt", Size: 850, MTime: 0x6b03538a, Attr: FileRegular}}, GB18030,
			"0:\xce\xc4\xbc\xfe.txt:352:6b03538a:1:\a"},
		{"unencodable", []File{{Name: "😀.png", Attr: FileRegular}}, CP932, "0:?.png:0:0:1:\a"},
		{"negative mtime", []File{{Name: "a", MTime: -1, Attr: FileRegular}}, UTF8, "0:a:0:ffffffffffffffff:1:\a"},
		{"ext attrs", []File{{ID: 7, Name: "image.png", Size: 0x5f3e, MTime: 0x65a1b2c3, Attr: FileClipboard,
			Ext: []ExtAttr{{FileExtClipboardPos, []uint64{3}}, {FileExtACL, nil}, {FileExtFinderInfo, []uint64{1, 0xa}}}}}, UTF8,
			"7:image.png:5f3e:65a1b2c3:20:8=3:22=1,a:\a"},
		{"none", nil, UTF8, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendFileList([]byte("text\x00"), tt.files, tt.cs); string(got) != "text\x00"+tt.want {
				t.Errorf("AppendFileList = %q, want %q", got, "text\x00"+tt.want)
			}
		})
	}
}

func TestFileType(t *testing.T) {
	f := File{Attr: FileRegular | FileReadOnly}
	h := DirHeader{Attr: FileDir | FileHidden}
	if f.Type() != FileRegular || h.Type() != FileDir {
		t.Errorf("Type = %#x, %#x", f.Type(), h.Type())
	}
}
