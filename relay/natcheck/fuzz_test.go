package natcheck

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

// FuzzAnswer feeds arbitrary datagrams to the request path. It must never
// panic, must answer every well-formed Binding request, and every answer must
// be a Binding success for the same transaction naming the sender.
func FuzzAnswer(f *testing.F) {
	tid := stun.NewTransactionIDSetter([stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add(stun.MustBuild(tid, stun.BindingRequest).Raw)
	f.Add(stun.MustBuild(tid, stun.BindingRequest, stun.NewSoftware("x"), stun.Fingerprint).Raw)
	f.Add(stun.MustBuild(tid, stun.BindingRequest, stun.NewUsername("u"), stun.NewShortTermIntegrity("p"), stun.Fingerprint).Raw)
	f.Add(stun.MustBuild(tid, stun.BindingSuccess, &stun.XORMappedAddress{IP: []byte{1, 2, 3, 4}, Port: 5}).Raw)
	f.Add(stun.MustBuild(tid, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw)
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x00\x04\x21\x12\xa4\x42 twelve bytes\x00\x00"))

	r := &responder{
		origin: netip.MustParseAddrPort("11.0.0.1:3478"),
		other:  netip.MustParseAddrPort("11.0.0.2:3479"),
		log:    slog.New(slog.DiscardHandler),
	}
	srcs := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:40000"), netip.MustParseAddrPort("[2001:db8::7]:1")}
	req, resp := new(stun.Message), new(stun.Message)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, src := range srcs {
			ok := r.answer(pkt, src, req, resp)
			var probe stun.Message
			wellFormed := stun.Decode(pkt, &probe) == nil && probe.Type == stun.BindingRequest && len(pkt) <= maxPacket
			if ok != wellFormed {
				t.Fatalf("answered=%v for a packet that is a Binding request: %v", ok, wellFormed)
			}
			if !ok {
				continue
			}
			var got stun.Message
			if err := stun.Decode(resp.Raw, &got); err != nil {
				t.Fatalf("answer does not decode: %v", err)
			}
			var mapped stun.XORMappedAddress
			if got.Type != stun.BindingSuccess || got.TransactionID != probe.TransactionID || mapped.GetFrom(&got) != nil {
				t.Fatalf("answer %v to %v", &got, &probe)
			}
			ip, _ := netip.AddrFromSlice(mapped.IP)
			if netip.AddrPortFrom(ip.Unmap(), uint16(mapped.Port)) != src {
				t.Fatalf("mapped %v, want %v", mapped, src)
			}
			if err := stun.Fingerprint.Check(&got); err != nil {
				t.Fatalf("fingerprint: %v", err)
			}
		}
	})
}
