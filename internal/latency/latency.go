// Package latency summarises the timings benchmarks collect: quantiles of
// operation durations, and durations as metrics.
package latency

import (
	"slices"
	"time"
)

// Quantile returns the q-quantile (0..1) of ds by the nearest-rank method;
// 0 for none.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Micros is d in microseconds, for benchmark metrics.
func Micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
