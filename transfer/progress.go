package transfer

import (
	"math"
	"time"
)

// Progress describes one transfer in flight.
type Progress struct {
	Done  int64         // bytes of content moved so far, counting a resumed .part
	Total int64         // bytes expected; 0 when unknown (folders)
	Files int           // folder entries (files and folders) moved so far
	Rate  float64       // bytes per second, smoothed over about two seconds
	ETA   time.Duration // time left at Rate; 0 when unknown
	Final bool          // the last report of this transfer
}

// Progress reporting.
const (
	// reportEvery rate-limits callbacks to ten a second; a UI redraws no
	// faster and a callback per chunk would cost more than the copy.
	reportEvery = 100 * time.Millisecond
	// rateWindow is the time constant of the rate's moving average: long
	// enough to smooth TCP's bursts, short enough to follow a real change.
	rateWindow = 2 * time.Second
)

// meter accumulates progress and reports it to fn, at most every
// reportEvery and once at the end. A nil fn makes it count only.
type meter struct {
	fn       func(Progress)
	p        Progress
	reported bool      // the first report goes out at once
	last     time.Time // of the last report, or the start
	lastDone int64     // Done at last
}

func newMeter(fn func(Progress), done, total int64) *meter {
	return &meter{fn: fn, p: Progress{Done: done, Total: total}, last: time.Now(), lastDone: done}
}

// add counts n more bytes and reports if it is time.
func (m *meter) add(n int64) {
	m.p.Done += n
	m.tick()
}

// file counts one more folder entry.
func (m *meter) file() {
	m.p.Files++
	m.tick()
}

func (m *meter) tick() {
	if m.fn == nil {
		return
	}
	now := time.Now()
	if m.reported && now.Sub(m.last) < reportEvery {
		return
	}
	m.reported = true
	m.sample(now)
	m.fn(m.p)
}

// sample folds the rate since the last sample into the moving average,
// weighting it by how long it covers, and updates the ETA. Intervals under
// a millisecond are left to accumulate: they measure the scheduler, not the
// link.
func (m *meter) sample(now time.Time) {
	dt := now.Sub(m.last).Seconds()
	if dt < 1e-3 {
		return
	}
	rate := float64(m.p.Done-m.lastDone) / dt
	if m.p.Rate == 0 {
		m.p.Rate = rate
	} else {
		m.p.Rate += (1 - math.Exp(-dt/rateWindow.Seconds())) * (rate - m.p.Rate)
	}
	m.last, m.lastDone = now, m.p.Done
	m.p.ETA = 0
	if left := m.p.Total - m.p.Done; left > 0 && m.p.Rate > 0 {
		m.p.ETA = time.Duration(float64(left) / m.p.Rate * float64(time.Second))
	}
}

// finish returns the final report, for the caller to send with whatever
// else it reports at the end.
func (m *meter) finish() Progress {
	m.p.Final = true
	m.sample(time.Now())
	return m.p
}
