package latency

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {.5, 5}, {.9, 9}, {.99, 10}, {1, 10}} {
		if got := Quantile(ds, c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if Quantile(nil, .5) != 0 {
		t.Error("Quantile of nothing is not 0")
	}
	if ds[0] != 5 {
		t.Error("Quantile sorted its argument")
	}
	if Micros(1500*time.Nanosecond) != 1.5 {
		t.Error("Micros")
	}
}
