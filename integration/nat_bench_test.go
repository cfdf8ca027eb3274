package integration

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lanchat/lanchat/internal/netns"
	"github.com/lanchat/lanchat/peer"
	"github.com/lanchat/lanchat/relay"
)

// natFileSize is the file BenchmarkAcrossNATs sends, natFileRounds times
// on each path.
const (
	natFileSize   = 50 << 20
	natFileRounds = 3
)

// BenchmarkAcrossNATs measures what TestAcrossNATs shows, in its topology:
// alice and carol behind cone NATs, bob behind a symmetric one. It reports
// the time from alice's first `lanchat send` to carol until delivered
// (the relay introduces them) and until their path is direct (hole
// punched); and the throughput of a 50 MiB file alice offers and the
// other accepts, over the direct path (carol) and through the relay (bob),
// beside a plain TCP copy of as many bytes from alice's host through her
// NAT to a sink on the relay's host: the most any path from alice can
// carry here. Run it with
//
//	go test -run '^$' -bench AcrossNATs -benchtime 1x ./integration
func BenchmarkAcrossNATs(b *testing.B) {
	netns.RequireNftables(b)
	nn := startNATNet(b, "11.204.0.0/24", "10.86", []natMember{
		{"alice", netns.NATCone}, {"carol", netns.NATCone}, {"bob", netns.NATSymmetric}})
	alice := nn.nodes["alice"]
	for _, to := range []string{"carol", "bob"} {
		waitContact(b, alice, to, true)
	}
	src := filepath.Join(b.TempDir(), "bench.bin")
	writeRandom(b, src, natFileSize)
	var firstMsg, toDirect time.Duration
	var direct, relayed, plain []float64 // MiB/s
	for b.Loop() {
		start := time.Now()
		if out, err := alice.CLI("send", "carol", "first"); err != nil || out != "delivered to carol\n" {
			b.Fatalf("alice → carol: %v, %q", err, out)
		}
		firstMsg = time.Since(start)
		eventually(b, 30*time.Second, func() (bool, string) {
			p := contact(b, alice, "carol").Path
			return p == relay.PathDirect, "alice reaches carol by " + p
		})
		toDirect = time.Since(start)
		for i := range natFileRounds {
			direct = append(direct, natFileRate(b, nn, "carol", fmt.Sprint("direct ", i), src))
			relayed = append(relayed, natFileRate(b, nn, "bob", fmt.Sprint("relayed ", i), src))
			plain = append(plain, plainTCPRate(b, nn.hosts["alice"], nn.relayHost, src))
		}
	}
	median := func(xs []float64) float64 { xs = slices.Clone(xs); slices.Sort(xs); return xs[len(xs)/2] }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(firstMsg.Milliseconds()), "first-msg-ms")
	b.ReportMetric(float64(toDirect.Milliseconds()), "to-direct-ms")
	b.ReportMetric(median(direct), "direct-MiB/s")
	b.ReportMetric(median(relayed), "relayed-MiB/s")
	b.ReportMetric(median(plain), "tcp-MiB/s")
	b.Logf("first message delivered in %v (a CLI call: process start, circuit, stream), path direct after %v",
		firstMsg.Round(time.Millisecond), toDirect.Round(time.Millisecond))
	b.Logf("50 MiB file, median of %d: direct %.0f MiB/s (%.0f%% of plain TCP), through the relay %.0f MiB/s (%.0f%%), plain TCP through the NAT %.0f MiB/s",
		natFileRounds, median(direct), 100*median(direct)/median(plain), median(relayed), 100*median(relayed)/median(plain), median(plain))
}

// natFileRate has alice offer src to a member, who accepts it; it returns
// the accept's throughput in MiB/s.
func natFileRate(b *testing.B, nn *natNet, to, text, src string) float64 {
	b.Helper()
	nd := nn.nodes[to]
	offer := offerFiles(b, nn.nodes["alice"], nd, record(b, nd), text, src)
	dest := b.TempDir()
	start := time.Now()
	ts, err := acceptJSON(nd, offer.ID, dest)
	d := time.Since(start)
	if err != nil || len(ts) != 1 || ts[0].State != peer.TransferDone {
		b.Fatalf("%s accepts: %v, %+v", to, err, ts)
	}
	os.RemoveAll(dest)
	return natFileSize / d.Seconds() / (1 << 20)
}

// plainTCPRate copies src over one TCP connection from one host to a sink
// on another and returns MiB/s, counted until the sink has read it all.
func plainTCPRate(b *testing.B, from, to *netns.Host, src string) float64 {
	b.Helper()
	ln, err := to.ListenTCP(0)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	c, err := from.DialTCP(ln.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(c, f); err != nil {
		b.Fatal(err)
	}
	c.Close()
	if n := <-got; n != natFileSize {
		b.Fatalf("the sink read %d bytes, want %d", n, natFileSize)
	}
	return natFileSize / time.Since(start).Seconds() / (1 << 20)
}
