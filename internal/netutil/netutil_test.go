package netutil

import (
	"net/netip"
	"testing"
)

func TestBroadcast(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"10.0.0.7/24", "10.0.0.255"},
		{"192.168.1.130/25", "192.168.1.255"},
		{"172.16.5.4/16", "172.16.255.255"},
		{"10.1.2.3/30", "10.1.2.3"},
		{"10.9.8.7/8", "10.255.255.255"},
	} {
		if got := Broadcast(netip.MustParsePrefix(tc.prefix)); got.String() != tc.want {
			t.Errorf("Broadcast(%s) = %s, want %s", tc.prefix, got, tc.want)
		}
	}
}

func TestLocalAndOnLink(t *testing.T) {
	ifs := []Iface{
		{Name: "lo", Prefix: netip.MustParsePrefix("127.0.0.1/8"), Loopback: true},
		{Name: "eth0", Prefix: netip.MustParsePrefix("10.0.0.7/24"), Broadcast: netip.MustParseAddr("10.0.0.255")},
		{Name: "eth1", Prefix: netip.MustParsePrefix("10.0.1.7/24"), Broadcast: netip.MustParseAddr("10.0.0.255")},
	}
	if !Local(ifs, netip.MustParseAddr("10.0.1.7")) || Local(ifs, netip.MustParseAddr("10.0.1.8")) {
		t.Error("Local does not match interface addresses exactly")
	}
	if !OnLink(ifs, netip.MustParseAddr("10.0.0.99")) || OnLink(ifs, netip.MustParseAddr("10.0.2.1")) {
		t.Error("OnLink wrong for a neighbour or a routed address")
	}
	if OnLink(ifs, netip.MustParseAddr("127.0.0.2")) {
		t.Error("loopback counted as a link broadcasts reach")
	}
	if got := Broadcasts(ifs); len(got) != 1 || got[0].String() != "10.0.0.255" {
		t.Errorf("Broadcasts = %v, want the one distinct address", got)
	}
}

func TestInterfacesListsLoopback(t *testing.T) {
	ifs, err := Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if !Local(ifs, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("Interfaces() = %v, want 127.0.0.1 among them", ifs)
	}
}
