package peer

import (
	"net/netip"
	"time"
)

// limiter is a token bucket per source address, so that one host flooding
// the port is cut off cheaply (before parsing) while everyone else is served.
type limiter struct {
	rate, burst float64
	buckets     map[netip.Addr]*bucket
	lastSweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the table, since spoofed sources are free to invent.
const maxBuckets = 65536

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, buckets: map[netip.Addr]*bucket{}}
}

// allow reports whether a packet from a may be processed now. Only the
// receive loop calls it.
func (l *limiter) allow(a netip.Addr, now time.Time) bool {
	b, ok := l.buckets[a]
	if !ok {
		l.sweep(now)
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[a] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets full buckets, at most once a minute or when the table is
// at its limit.
func (l *limiter) sweep(now time.Time) {
	if len(l.buckets) < maxBuckets && now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	for a, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst || len(l.buckets) >= maxBuckets {
			delete(l.buckets, a)
		}
	}
}
