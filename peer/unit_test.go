package peer

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/lanchat/lanchat/ipmsg"
)

// TestLimiter checks the token bucket per source on a fake clock: a burst
// is allowed, the rest dropped, tokens come back at the rate, and another
// source is not affected.
func TestLimiter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(10, 20)
		a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
		count := func(src netip.Addr, tries int) int {
			n := 0
			for range tries {
				if l.allow(src, time.Now()) {
					n++
				}
			}
			return n
		}
		if n := count(a, 100); n != 20 {
			t.Errorf("burst: allowed %d of 100, want 20", n)
		}
		if n := count(b, 5); n != 5 {
			t.Errorf("other source allowed %d of 5 while the first is cut off", n)
		}
		time.Sleep(100 * time.Millisecond) // one token at 10/s
		if n := count(a, 10); n != 1 {
			t.Errorf("after 100ms allowed %d, want 1", n)
		}
		time.Sleep(10 * time.Second) // refills, but never above the burst
		if n := count(a, 100); n != 20 {
			t.Errorf("after a long pause allowed %d, want the burst of 20", n)
		}
		// A minute later, a new source sweeps the full buckets away.
		time.Sleep(time.Minute)
		l.allow(netip.MustParseAddr("10.0.0.3"), time.Now())
		if len(l.buckets) != 1 {
			t.Errorf("%d buckets after the sweep, want 1", len(l.buckets))
		}
	})
}

// TestLimiterBounded: invented source addresses cannot grow the table
// past maxBuckets.
func TestLimiterBounded(t *testing.T) {
	t.Parallel()
	l := newLimiter(20000, 40000)
	now := time.Unix(1_700_000_000, 0)
	for i := range maxBuckets + 5000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		now = now.Add(time.Microsecond)
		if !l.allow(a, now) {
			t.Fatalf("first packet of new source %v dropped", a)
		}
		if len(l.buckets) > maxBuckets {
			t.Fatalf("%d buckets, limit %d", len(l.buckets), maxBuckets)
		}
	}
}

// TestDedup checks the ring of recent (sender, packet number) pairs.
func TestDedup(t *testing.T) {
	t.Parallel()
	d := newDedup()
	a := netip.MustParseAddrPort("10.0.0.1:2425")
	b := netip.MustParseAddrPort("10.0.0.2:2425")
	a2 := netip.MustParseAddrPort("10.0.0.1:2426") // another node on a's machine
	steps := []struct {
		from netip.AddrPort
		no   uint64
		want bool
	}{
		{a, 1, true}, {a, 1, false}, {b, 1, true}, {a, 2, true}, {a2, 1, true}, {a2, 1, false}, {a, 1, false},
	}
	for i, s := range steps {
		if got := d.firstTime(s.from, s.no); got != s.want {
			t.Errorf("step %d: firstTime(%v, %d) = %v, want %v", i, s.from, s.no, got, s.want)
		}
	}
	// The ring forgets the oldest once dedupSize newer pairs came.
	for i := range dedupSize {
		d.firstTime(b, uint64(100+i))
	}
	if !d.firstTime(a, 1) {
		t.Error("a pair older than dedupSize is still remembered")
	}
	if len(d.seen) != dedupSize {
		t.Errorf("%d pairs remembered, want %d", len(d.seen), dedupSize)
	}
}

// TestRTTEstimate checks the smoothed round trip (RFC 6298) and the
// retransmission timeout with its floors and ceiling, on a fake clock.
func TestRTTEstimate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var r rttEstimate
		measure := func(d time.Duration) time.Duration {
			start := time.Now()
			time.Sleep(d)
			return time.Since(start)
		}
		r.sample(measure(100 * time.Millisecond))
		if r.srtt != 100*time.Millisecond || r.rttvar != 50*time.Millisecond {
			t.Errorf("first sample: srtt %v rttvar %v, want 100ms 50ms", r.srtt, r.rttvar)
		}
		r.sample(measure(200 * time.Millisecond))
		if r.srtt != 112500*time.Microsecond || r.rttvar != 62500*time.Microsecond {
			t.Errorf("second sample: srtt %v rttvar %v, want 112.5ms 62.5ms", r.srtt, r.rttvar)
		}

		n := &Node{rtt: map[string]*rttEstimate{}}
		cases := []struct {
			key          string
			sample       time.Duration // 0: none
			legacy, lanc time.Duration
		}{
			{"unknown", 0, maxRTO, maxRTO},
			{"fast", time.Millisecond, minRTOLegacy, minRTOLanchat}, // 3 ms, raised to the floors
			{"medium", 100 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond},
			{"slow", 400 * time.Millisecond, maxRTO, maxRTO}, // 1.2 s, capped
		}
		for _, c := range cases {
			if c.sample > 0 {
				n.sampleRTT(c.key, measure(c.sample))
			}
			if got := n.rto(c.key, true); got != c.legacy {
				t.Errorf("%s: legacy rto %v, want %v", c.key, got, c.legacy)
			}
			if got := n.rto(c.key, false); got != c.lanc {
				t.Errorf("%s: lanchat rto %v, want %v", c.key, got, c.lanc)
			}
		}
	})
}

// TestSplitText cuts text into parts that fit, preferring a line break in
// the second half of a part and never cutting a character.
func TestSplitText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		text  string
		cs    ipmsg.Charset
		limit int
		want  []string
	}{
		{"short", "hello", ipmsg.UTF8, 100, []string{"hello"}},
		{"empty", "", ipmsg.UTF8, 10, []string{""}},
		{"exact fit", "aaaaaaaaaa", ipmsg.UTF8, 10, []string{"aaaaaaaaaa"}},
		{"one over", "aaaaaaaaaaa", ipmsg.UTF8, 10, []string{"aaaaaaaaaa", "a"}},
		{"gbk two bytes", "中文中文中", ipmsg.GB18030, 4, []string{"中文", "中文", "中"}},
		{"utf-8 three bytes", "中文中文中", ipmsg.UTF8, 7, []string{"中文", "中文", "中"}},
		{"never inside a character", "a中", ipmsg.UTF8, 3, []string{"a", "中"}},
		{"line break in second half", "aaaa\nbbbbbbb", ipmsg.UTF8, 8, []string{"aaaa\n", "bbbbbbb"}},
		{"line break in first half ignored", "a\nbbbbbbbbb", ipmsg.UTF8, 8, []string{"a\nbbbbbb", "bbb"}},
		{"unencodable counts as ?", "a😀bc", ipmsg.GB18030, 3, []string{"a😀b", "c"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := splitText(c.text, c.cs, c.limit)
			if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
				t.Errorf("splitText(%q, %v, %d) = %q, want %q", c.text, c.cs, c.limit, got, c.want)
			}
		})
	}
}

// TestSplitTextProperties splits random mixed text at many limits: every
// part fits, is whole characters, and the parts rebuild the text.
func TestSplitTextProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []rune("abc 中文字，。\n😀é")
	for round := range 200 {
		rs := make([]rune, rng.IntN(3000))
		for i := range rs {
			rs[i] = alphabet[rng.IntN(len(alphabet))]
		}
		text := string(rs)
		for _, cs := range []ipmsg.Charset{ipmsg.UTF8, ipmsg.GB18030} {
			limit := 4 + rng.IntN(600)
			parts := splitText(text, cs, limit)
			if strings.Join(parts, "") != text {
				t.Fatalf("round %d %v limit %d: parts do not rebuild the text", round, cs, limit)
			}
			for i, p := range parts {
				if n := len(cs.Encode(p)); n > limit {
					t.Fatalf("round %d %v: part %d is %d bytes, limit %d", round, cs, i, n, limit)
				}
				if !utf8.ValidString(p) || (p == "" && len(parts) > 1) {
					t.Fatalf("round %d: part %d %q is empty or cut inside a character", round, i, p)
				}
			}
		}
	}
}

// TestPacketNumbers runs the counter on a fake clock (synctest starts at
// 2000-01-01 00:00:00 UTC): numbers start at the unix time, follow the clock
// forward, never go back, and resume above the saved mark after a restart
// or a crash.
func TestPacketNumbers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		start := uint64(time.Now().Unix())
		p, err := openPacketNumbers(dir, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Next(); got != start {
			t.Errorf("first number %d, want the unix time %d", got, start)
		}
		last := start
		for range 2 * pktReserve { // crosses two reservations
			n := p.Next()
			if n != last+1 {
				t.Fatalf("number %d after %d", n, last)
			}
			last = n
		}
		time.Sleep(10 * time.Hour) // the clock passes the counter
		if got, want := p.Next(), start+36000; got != want || want <= last {
			t.Errorf("ten hours later: %d, want the clock %d", got, want)
		}
		last = start + 36000
		mark := readMark(t, dir)
		if mark <= last {
			t.Errorf("saved mark %d is not above the last number %d", mark, last)
		}

		// A crash: no clean shutdown, a new counter on the same folder.
		q, err := openPacketNumbers(dir, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Next(); got != mark+1 {
			t.Errorf("after restart: %d, want just above the mark %d", got, mark)
		}
		if p.err != nil || q.err != nil {
			t.Errorf("save errors: %v, %v", p.err, q.err)
		}
	})
}

// TestPacketNumbersFutureMark: a saved mark ahead of the clock (the clock
// was set back) wins over the clock.
func TestPacketNumbersFutureMark(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	future := uint64(time.Now().Unix()) + 1_000_000
	writeMark(t, dir, future)
	p, err := openPacketNumbers(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Next(); got != future+1 {
		t.Errorf("first number %d, want %d", got, future+1)
	}
	if err := os.WriteFile(filepath.Join(dir, "packetno"), []byte("12ab\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openPacketNumbers(dir, time.Now()); err == nil {
		t.Error("a corrupt packet number file was accepted")
	}
}

func readMark(t *testing.T, dir string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "packetno"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writeMark(t *testing.T, dir string, n uint64) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "packetno"), []byte(strconv.FormatUint(n, 10)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestIncomingID(t *testing.T) {
	at := time.Unix(1763900000, 123456789)
	if got, want := incomingID(at, 42), fmt.Sprintf("i%x-%d", at.UnixNano(), 42); got != want {
		t.Errorf("incomingID = %q, want %q", got, want)
	}
}

// TestFIFOMap: beyond its bound the oldest entry goes; taken entries free
// their room, and their keys do not pile up in the order kept.
func TestFIFOMap(t *testing.T) {
	f := newFIFOMap[int, string](3)
	for i := range 5 {
		f.put(i, strconv.Itoa(i))
	}
	if _, ok := f.get(1); ok || f.len() != 3 {
		t.Fatalf("after 5 puts into 3: len %d, 1 still there %v", f.len(), ok)
	}
	for _, k := range []int{2, 3, 4} {
		if v, ok := f.get(k); !ok || v != strconv.Itoa(k) {
			t.Errorf("get(%d) = %q, %v", k, v, ok)
		}
	}
	f.put(4, "four") // an update keeps its place
	if v, _ := f.take(4); v != "four" || f.len() != 2 {
		t.Errorf("take(4) = %q, len %d", v, f.len())
	}
	for i := range 1000 { // put and take: the order is compacted
		f.put(100+i, "x")
		f.take(100 + i)
	}
	if f.len() != 2 || len(f.order) > 2*f.max {
		t.Errorf("after 1000 put/take: len %d, order %d", f.len(), len(f.order))
	}
	f.put(7, "7")
	f.put(8, "8") // pushes out 2, the oldest
	if _, ok := f.get(2); ok || f.len() != 3 {
		t.Errorf("the oldest was not pushed out: len %d", f.len())
	}
}
