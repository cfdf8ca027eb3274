//go:build linux

package interop

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A real excerpt of iptux 0.8.3's DEBUG log: one datagram received, one sent.
const iptuxLogExcerpt = `[2026-11-23 11:52:58.442][iptux-139912531666624][DEBUG]iptux-core/internal/UdpDataService.cpp:25:process:received udp message from 10.77.0.3:2425, size 98
"1:1795434778:lanchat:vm:16777217:\xd0\xa1\xc3\xf7\x00\x00\nUN:lanchat\nHN:vm\nNN:\xe5\xb0\x8f\xe6\x98\x8e\nGN:\nVS:00500000:0:1:100\nLC:0.1\x00"
[2026-11-23 11:52:58.442][iptux-139912531666624][INFO ]iptux-core/internal/UdpDataService.cpp:49:process:command NO.: [0x1000001] BR_ENTRY
[2026-11-23 11:52:58.447][iptux-139912531666624][DEBUG]iptux-core/internal/Command.cpp:64:commandSendTo:send udp message to 10.77.0.3:2425, size 59
00000000  31 5f 69 70 74 75 78 20  30 2e 38 2e 33 3a 39 3a  |1_iptux 0.8.3:9:|
00000010  72 6f 6f 74 3a 76 6d 3a  32 35 39 3a c6 f3 b6 ec  |root:vm:259:....|
00000020  00 d1 d0 b7 a2 b2 bf 00  69 63 6f 6e 2d 74 75 78  |........icon-tux|
00000030  2e 70 6e 67 00 75 74 66  2d 38 00                 |.png.utf-8.|
0000003b

[2026-11-23 11:52:58.447][iptux-139912531666624][DEBUG]iptux-core/internal/Command.cpp:64:commandSendTo:send udp message to 10.77.0.3:2425, size 60
00000000  31 5f 69 70 74 75 78 20  30 2e 38 2e 33 3a 31 30  |1_iptux 0.8.3:10|
`

func TestIptuxLogParse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "iptux.log")
	if err := os.WriteFile(path, []byte(iptuxLogExcerpt), 0o600); err != nil {
		t.Fatal(err)
	}
	got := (&iptux{LogPath: path}).Datagrams()
	want := []string{
		`from 10.77.0.3:2425 "1:1795434778:lanchat:vm:16777217:\xd0\xa1\xc3\xf7\x00\x00\nUN:lanchat\nHN:vm\nNN:\xe5\xb0\x8f\xe6\x98\x8e\nGN:\nVS:00500000:0:1:100\nLC:0.1\x00"`,
		`to 10.77.0.3:2425 "1_iptux 0.8.3:9:root:vm:259:\xc6\xf3\xb6\xec\x00\xd1\xd0\xb7\xa2\xb2\xbf\x00icon-tux.png\x00utf-8\x00"`,
		// the last record is cut short, as while iptux is still writing it: left out
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %d datagrams, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("datagram %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	h, ok := parseHeader(got[1].Data)
	if !ok || h.Mode() != modeAnsEntry || h.PacketNo != "9" || !bytes.HasPrefix(h.Extra, gbkTuxNick) {
		t.Errorf("header of the ANSENTRY: %+v %v", h, ok)
	}
}

// TestIptuxCaptures keeps testdata/iptux-captures.txt readable by code:
// every vector a Go string literal that quoteBytes reproduces.
func TestIptuxCaptures(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "iptux-captures.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.Unquote(line)
		if err != nil {
			t.Errorf("line %d: %v: %s", i+1, err, line)
			continue
		}
		if q := quoteBytes([]byte(v)); q != line {
			t.Errorf("line %d is not in quoteBytes form:\n got %s\nwant %s", i+1, line, q)
		}
		n++
	}
	if n < 10 {
		t.Errorf("only %d vectors", n)
	}
}
