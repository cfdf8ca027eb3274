package ipmsg

import (
	"bytes"
	"strconv"
	"testing"
)

// The benchmarks print beside baselines measured in the same run: the naive
// parse with bytes.Split and strconv that Parse and ParseFileList replace.

// benchPackets are a typical message (MSG-5, UTF-8 text) and an iptux entry.
var benchPackets = []string{"MSG-5", "ENT-1"}

func BenchmarkParse(b *testing.B) {
	for _, name := range benchPackets {
		buf := vectorBytes(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := Parse(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBaselineSplit is the naive header parse: SplitN on ':' and
// strconv.ParseUint of the packet number and the command.
func BenchmarkBaselineSplit(b *testing.B) {
	for _, name := range benchPackets {
		buf := vectorBytes(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				f := bytes.SplitN(buf, []byte(":"), 6)
				if len(f) != 6 {
					b.Fatal("short")
				}
				_, err1 := strconv.ParseUint(string(f[1]), 10, 64)
				_, err2 := strconv.ParseUint(string(f[4]), 10, 32)
				if err1 != nil || err2 != nil {
					b.Fatal(err1, err2)
				}
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, name := range benchPackets {
		p, _ := Parse(vectorBytes(b, name))
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]byte, 0, MaxSendIPMsg)
			for b.Loop() {
				dst = p.Append(dst[:0])
			}
		})
	}
}

func BenchmarkParseEntry(b *testing.B) {
	for _, name := range []string{"ENT-1", "ENT-13", "ENT-12"} {
		p, _ := Parse(vectorBytes(b, name))
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ParseEntry(p, Unknown)
			}
		})
	}
}

// benchLists are W's two-entry offer list and 100 entries of the same shape.
func benchLists(b *testing.B) map[string][]byte {
	p, _ := Parse(vectorBytes(b, "FILE-10"))
	var big []byte
	for i := range 100 {
		big = AppendFileList(big, []File{{ID: uint64(123456789 + i), Name: "report-" + strconv.Itoa(i) + ".pdf",
			Size: 1234, MTime: 0x65a1b2c3, Attr: FileRegular}}, UTF8)
	}
	return map[string][]byte{"FILE-10": p.Section(1), "100-files": big}
}

func BenchmarkParseFileList(b *testing.B) {
	for _, name := range []string{"FILE-10", "100-files"} {
		list := benchLists(b)[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(list)))
			for b.Loop() {
				if _, err := ParseFileList(list, UTF8); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBaselineFileList is the naive list parse: Split on '\a' and ':',
// strconv for the numbers, string for the name (no "::" handling).
func BenchmarkBaselineFileList(b *testing.B) {
	for _, name := range []string{"FILE-10", "100-files"} {
		list := benchLists(b)[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(list)))
			for b.Loop() {
				var files []File
				for _, e := range bytes.Split(list, []byte("\a")) {
					f := bytes.Split(bytes.TrimPrefix(e, []byte(":")), []byte(":"))
					if len(f) < 5 {
						continue
					}
					id, _ := strconv.ParseUint(string(f[0]), 10, 64)
					size, _ := strconv.ParseUint(string(f[2]), 16, 64)
					mtime, _ := strconv.ParseUint(string(f[3]), 16, 64)
					attr, _ := strconv.ParseUint(string(f[4]), 16, 32)
					files = append(files, File{ID: id, Name: string(f[1]), Size: size, MTime: int64(mtime), Attr: uint32(attr)})
				}
				if len(files) == 0 {
					b.Fatal("no files")
				}
			}
		})
	}
}
