// Package netutil lists this machine's IPv4 interface addresses and their
// broadcast addresses, the targets of LAN presence announcements.
package netutil

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Iface is one IPv4 address of an interface that is up.
type Iface struct {
	Name      string
	Prefix    netip.Prefix // address and mask, e.g. 10.0.0.7/24
	Broadcast netip.Addr   // directed broadcast; invalid when the interface cannot broadcast
	Loopback  bool
}

// Interfaces returns the IPv4 addresses of every interface that is up.
func Interfaces() ([]Iface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []Iface
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue // an interface that vanished meanwhile
		}
		for _, a := range addrs {
			if f, ok := fromAddr(ifc, a); ok {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

func fromAddr(ifc net.Interface, a net.Addr) (Iface, bool) {
	ipn, ok := a.(*net.IPNet)
	if !ok {
		return Iface{}, false
	}
	ip, ok := netip.AddrFromSlice(ipn.IP.To4())
	if !ok {
		return Iface{}, false
	}
	ones, _ := ipn.Mask.Size()
	f := Iface{Name: ifc.Name, Prefix: netip.PrefixFrom(ip, ones), Loopback: ifc.Flags&net.FlagLoopback != 0}
	if ifc.Flags&net.FlagBroadcast != 0 && ones < 31 {
		f.Broadcast = Broadcast(f.Prefix)
	}
	return f, true
}

// Broadcast returns the directed broadcast address of an IPv4 prefix.
func Broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Broadcasts returns the distinct directed broadcast addresses of ifs.
func Broadcasts(ifs []Iface) []netip.Addr {
	var out []netip.Addr
	for _, f := range ifs {
		if f.Broadcast.IsValid() && !slices.Contains(out, f.Broadcast) {
			out = append(out, f.Broadcast)
		}
	}
	return out
}

// Local reports whether a is one of the addresses in ifs.
func Local(ifs []Iface, a netip.Addr) bool {
	return slices.ContainsFunc(ifs, func(f Iface) bool { return f.Prefix.Addr() == a })
}

// OnLink reports whether a lies in the prefix of one of ifs, so a broadcast
// there reaches it.
func OnLink(ifs []Iface, a netip.Addr) bool {
	return slices.ContainsFunc(ifs, func(f Iface) bool { return !f.Loopback && f.Prefix.Contains(a) })
}
