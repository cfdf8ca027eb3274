package peer

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pktReserve is how many packet numbers are reserved on disk at a time: the
// file is rewritten once per block, and after a crash the counter resumes
// above the reserved mark, so numbers never go backwards.
const pktReserve = 4096

// packetNumbers hands out IPMsg packet numbers. They start at the current
// unix time, as IP Messenger's do, and never go backwards across restarts
// even when the clock does: iptux ignores a sender whose numbers drop.
type packetNumbers struct {
	mu       sync.Mutex
	path     string
	next     uint64
	reserved uint64
	err      error
}

func openPacketNumbers(dir string, now time.Time) (*packetNumbers, error) {
	p := &packetNumbers{path: filepath.Join(dir, "packetno")}
	last, err := readUint(p.path)
	if err != nil {
		return nil, err
	}
	p.next = max(uint64(now.Unix()), last+1)
	if err := p.reserve(); err != nil {
		return nil, err
	}
	return p, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read packet number: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("packet number file %s is corrupt: %w", path, err)
	}
	return n, nil
}

// reserve writes a new high-water mark, atomically.
func (p *packetNumbers) reserve() error {
	mark := p.next + pktReserve
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(mark, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("save packet number: %w", err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		return fmt.Errorf("save packet number: %w", err)
	}
	p.reserved = mark
	return nil
}

// Next returns the next packet number. The clock moving ahead of the
// counter moves the counter forward, as in IP Messenger.
func (p *packetNumbers) Next() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := uint64(time.Now().Unix()); now > p.next {
		p.next = now
	}
	n := p.next
	p.next++
	if p.next >= p.reserved {
		// A failed write is kept and reported by Err; numbers keep counting
		// in memory, which is still monotonic for this run.
		p.err = p.reserve()
	}
	return n
}
