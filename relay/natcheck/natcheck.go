// Package natcheck tells a node what its NAT does to UDP, and where its TCP
// port appears outside, with a STUN Binding responder for the relay (Serve,
// ServeTCP) and a client (Probe, ProbeTCP).
//
// # Method
//
// The relay answers STUN Binding requests (RFC 5389, RFC 8489) on two or more
// UDP sockets, ideally on two IP addresses. Each success response carries
// XOR-MAPPED-ADDRESS, the source address and port the request came from; when
// the socket is bound to a specific address it also carries RESPONSE-ORIGIN
// (that address) and OTHER-ADDRESS (the next socket's, when that too is
// specific), as in RFC 5780 section 7, and always FINGERPRINT.
//
// Probe sends a Binding request from one local UDP socket to every server
// address, retransmitting each unanswered request after 300 ms, then 600 ms,
// 1.2 s, ... (RFC 5389 section 7.2.1 with a shorter first RTO) and giving up
// 3 s after the first send. From the mapped addresses it concludes
// (RFC 4787 section 4.1, RFC 5780 section 4.3):
//
//   - None: the mapped address is the socket's own: no NAT on the path.
//   - EndpointIndependent: every server saw the same mapped address, so a
//     peer can reach the node there once the node has sent to it; hole
//     punching works.
//   - Symmetric: the mapping differs per destination, so the address the
//     relay sees is useless to peers; punching fails and traffic stays on the
//     relay.
//   - Blocked: no server answered at all: UDP is filtered.
//   - Unknown: only one server answered and the node is behind a NAT.
//
// Two ports on one IP separate these only for NATs whose mapping depends on
// the destination port too (as Linux masquerade with random ports does); a
// NAT that maps per destination address needs servers on two IPs to show up
// as Symmetric. Filtering behaviour is not probed: hole punching copes with
// address-and-port-dependent filtering as long as the mapping is endpoint
// independent.
//
// # TCP
//
// ServeTCP answers the same Binding request over TCP (RFC 5389 section
// 7.2.2), one per connection: the relay listens on its first STUN port for
// it. ProbeTCP connects from the port libp2p listens on (both sockets set
// SO_REUSEPORT) and learns that port's public mapping: the address a member
// connected to its relay over QUIC cannot otherwise know, and the one a
// member whose network blocks UDP punches through with TCP simultaneous
// open. A refused connection (a relay without the listener) is ErrNoTCP.
package natcheck

import (
	"fmt"
	"net/netip"
)

// Mapping is how a NAT maps one inside socket's traffic, as Probe found it.
type Mapping int

const (
	Unknown             Mapping = iota // not determined: only one server answered
	None                               // not behind NAT: mapped address == local address
	EndpointIndependent                // one mapping for every destination (full, restricted or port-restricted cone)
	Symmetric                          // a different mapping per destination
	Blocked                            // no server answered over UDP
)

var mappingNames = [...]string{
	Unknown:             "unknown",
	None:                "none",
	EndpointIndependent: "endpoint-independent",
	Symmetric:           "symmetric",
	Blocked:             "blocked",
}

// String is a short machine-friendly name, such as "symmetric".
func (m Mapping) String() string {
	if m >= 0 && int(m) < len(mappingNames) {
		return mappingNames[m]
	}
	return fmt.Sprintf("Mapping(%d)", int(m))
}

// MarshalText encodes m as its String, for JSON output.
func (m Mapping) MarshalText() ([]byte, error) {
	if m < 0 || int(m) >= len(mappingNames) {
		return nil, fmt.Errorf("natcheck: marshal %v: unknown mapping", m)
	}
	return []byte(m.String()), nil
}

// UnmarshalText is the inverse of MarshalText.
func (m *Mapping) UnmarshalText(b []byte) error {
	for i, name := range mappingNames {
		if name == string(b) {
			*m = Mapping(i)
			return nil
		}
	}
	return fmt.Errorf("natcheck: unknown mapping %q", b)
}

// Result is what Probe found.
type Result struct {
	Mapping Mapping
	// Public is the address and port the first answering server saw; the
	// zero value if none answered.
	Public netip.AddrPort
	// Local is the probe socket's own address towards that server.
	Local netip.AddrPort
}

// String is a short phrase for users, as shown by `lanchat status`.
func (r Result) String() string {
	switch r.Mapping {
	case None:
		return "no NAT (public address " + r.Public.String() + "; direct connections work)"
	case EndpointIndependent:
		return "NAT with endpoint-independent mapping (public address " + r.Public.String() + "; hole punching can work)"
	case Symmetric:
		return "symmetric NAT (hole punching won't work; traffic goes through the relay)"
	case Blocked:
		return "UDP blocked (no STUN answer; the relay is reached over TCP, and hole punching can work only over TCP)"
	}
	if r.Public.IsValid() {
		return "NAT of unknown type (public address " + r.Public.String() + "; only one STUN server answered)"
	}
	return "NAT type unknown"
}
