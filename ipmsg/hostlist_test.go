package ipmsg

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// hostListCases are ANSLIST extras derived from W's SendHostList and
// MakeHostListStr ("%5d%c%5d%c" then "%s\a%s\a%d\a%s\a%d\a%s\a%s\a" with
// htons(port) and "\b" for an empty nick or group). Each is parsed and
// rebuilt byte for byte.
var hostListCases = []struct {
	name string
	wire string
	cs   Charset
	list HostList
}{
	{"two hosts, last chunk",
		"    0\a    2\auser1\aPC-1\a224657409\a192.168.1.10\a30985\anick1\agroup1\a" +
			"user2\aPC-2\a257\a192.168.1.11\a30985\a\b\a\b\a",
		UTF8, HostList{Hosts: []ListedHost{
			{User: "user1", Host: "PC-1", Status: 224657409, Addr: "192.168.1.10", Port: 2425, Nick: "nick1", Group: "group1"},
			{User: "user2", Host: "PC-2", Status: BrEntry | AbsenceOpt, Addr: "192.168.1.11", Port: 2425},
		}}},
	{"more to come",
		"  100\a    1\aa\ab\a1\a10.0.0.1\a3850\a\b\ag\a",
		UTF8, HostList{Next: 100, Hosts: []ListedHost{{User: "a", Host: "b", Status: BrEntry, Addr: "10.0.0.1", Port: 2575, Group: "g"}}}},
	{"gbk names", "    0\a    1\ali\apc\a1\a10.0.0.2\a30985\a\xd0\xa1\xc0\xee\a\xd1\xd0\xb7\xa2\a",
		GB18030, HostList{Hosts: []ListedHost{{User: "li", Host: "pc", Status: BrEntry, Addr: "10.0.0.2", Port: 2425, Nick: "小李", Group: "研发"}}}},
	{"status with the top bit (W's %d)", "    0\a    1\au\ah\a-2147483391\a10.0.0.3\a30985\a\b\a\b\a",
		UTF8, HostList{Hosts: []ListedHost{{User: "u", Host: "h", Status: 0x80000101, Addr: "10.0.0.3", Port: 2425}}}},
	{"empty list", "    0\a    0\a", UTF8, HostList{}},
}

func TestHostList(t *testing.T) {
	for _, tt := range hostListCases {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseHostList([]byte(tt.wire), tt.cs)
			if err != nil || l.Next != tt.list.Next || !equalHosts(l.Hosts, tt.list.Hosts) {
				t.Fatalf("ParseHostList = %+v, %v\nwant %+v", l, err, tt.list)
			}
			if got := AppendHostList(nil, l, tt.cs); string(got) != tt.wire {
				t.Errorf("AppendHostList:\n got %q\nwant %q", got, tt.wire)
			}
		})
	}
}

func equalHosts(a, b []ListedHost) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

func TestParseHostListLenient(t *testing.T) {
	// W's reader goes by the fields, not the count, and so does this one;
	// an unpadded header, a missing final '\a' and trailing NULs pass.
	l, err := ParseHostList([]byte("0\a5\au\ah\a1\a10.0.0.1\a30985\an\ag\x00\x00"), UTF8)
	want := []ListedHost{{User: "u", Host: "h", Status: 1, Addr: "10.0.0.1", Port: 2425, Nick: "n", Group: "g"}}
	if err != nil || !equalHosts(l.Hosts, want) {
		t.Errorf("ParseHostList = %+v, %v", l, err)
	}
}

func TestParseHostListErrors(t *testing.T) {
	tests := []struct {
		name string
		wire string
		err  error
		msg  string
	}{
		{"empty", "", ErrMalformed, "next position"},
		{"no count", "    0", ErrMalformed, `count ""`},
		{"bad next", "   x0\a    1\a", ErrMalformed, `next position "   x0"`},
		{"bad count", "    0\a   -1\a", ErrMalformed, `count "   -1"`},
		{"short host", "    0\a    1\au\ah\a1\a", ErrMalformed, "host list entry 0: 4 fields, want 7"},
		{"bad status", "    0\a    1\au\ah\ax\aa\a1\an\ag\a", ErrMalformed, `entry 0: status "x"`},
		{"status over 32 bits", "    0\a    1\au\ah\a4294967296\aa\a1\an\ag\a", ErrMalformed, "status"},
		{"bad port", "    0\a    1\au\ah\a1\aa\a65536\an\ag\a", ErrMalformed, `entry 0: port "65536"`},
		{"second host short", "    0\a    2\au\ah\a1\aa\a1\an\ag\au\a", ErrMalformed, "host list entry 1"},
		{"too many hosts", "    0\a    0\a" + strings.Repeat("u\ah\a1\aa\a1\an\ag\a", MaxListHosts+1), ErrTooLarge, "2049 hosts, limit 2048"},
		{"too large", strings.Repeat("x", MaxDatagram+1), ErrTooLarge, "65508 bytes, limit 65507"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHostList([]byte(tt.wire), UTF8)
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %v, want %v containing %q", err, tt.err, tt.msg)
			}
		})
	}
}

func TestAppendHostListFields(t *testing.T) {
	l := HostList{Next: 123456, Hosts: []ListedHost{{User: "a\ab", Port: 1}}}
	want := "123456\a    1\aa_b\a\b\a0\a\b\a256\a\b\a\b\a"
	if got := AppendHostList(nil, l, UTF8); string(got) != want {
		t.Errorf("AppendHostList = %q, want %q", got, want)
	}
}
