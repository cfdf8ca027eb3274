package transfer

import (
	"math"
	"testing"
	"testing/synctest"
	"time"
)

// TestMeter feeds a steady 1 MB/s for a second of fake time: reports come
// at once and then at most every 100 ms, the rate settles on 1 MB/s and
// the ETA follows from it.
func TestMeter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reports []Progress
		var at []time.Time
		m := newMeter(func(p Progress) { reports = append(reports, p); at = append(at, time.Now()) }, 0, 10_000_000)
		for range 100 {
			time.Sleep(10 * time.Millisecond)
			m.add(10_000)
		}
		final := m.finish()
		if n := len(reports); n < 9 || n > 11 {
			t.Errorf("%d reports in one second, want about 10", n)
		}
		for i := 1; i < len(at); i++ {
			if d := at[i].Sub(at[i-1]); d < reportEvery {
				t.Errorf("reports %d and %d only %v apart", i-1, i, d)
			}
		}
		if !final.Final || final.Done != 1_000_000 || math.Abs(final.Rate-1e6) > 1e3 {
			t.Errorf("final = %+v, want 1e6 bytes at 1e6 B/s", final)
		}
		if final.ETA != 9*time.Second {
			t.Errorf("ETA = %v, want 9s", final.ETA)
		}
	})
}

// TestMeterSmoothing: after a jump from 1 MB/s to 3 MB/s the rate moves
// toward the new speed over a couple of seconds instead of jumping.
func TestMeterSmoothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var last Progress
		m := newMeter(func(p Progress) { last = p }, 0, 0)
		step := func(perTick int64, ticks int) {
			for range ticks {
				time.Sleep(100 * time.Millisecond)
				m.add(perTick)
			}
		}
		step(100_000, 20)
		step(300_000, 5)
		if last.Rate <= 1.1e6 || last.Rate >= 2.5e6 {
			t.Errorf("rate half a second after the jump = %.0f, want between the speeds", last.Rate)
		}
		step(300_000, 100)
		if math.Abs(last.Rate-3e6) > 0.05e6 {
			t.Errorf("rate after ten seconds = %.0f, want 3e6", last.Rate)
		}
		if last.ETA != 0 {
			t.Errorf("ETA = %v with no total", last.ETA)
		}
	})
}
