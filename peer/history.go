package peer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// history keeps every conversation as a JSON-lines file per contact in
// <data>/history. A message is a line; a later line with the same ID and only
// a status updates it. Lines are encoded and written by one goroutine, in
// the order they were added, so that a message's round trip does not wait
// for the disk. The writer lets lines gather for historyLinger after the
// first before writing them, one write per file; a read, Sync and close
// first wait for the lines added before them, without the linger. Files are
// opened O_APPEND, so a crash loses at most the lines not yet written, never
// earlier ones.
type history struct {
	dir   string
	onErr func(error)
	ops   chan histOp
	wake  chan struct{} // ends the linger early: a flush is waiting; capacity 1
	done  chan struct{}

	mu     sync.RWMutex // guards closed against sends on a closed ops
	closed bool

	files map[string]*os.File // owned by the writer goroutine
}

// histOp is a line to write, or a flush marker (flushed set).
type histOp struct {
	key     string
	rec     record
	flushed chan struct{}
}

// historyQueue is how many lines may wait for the writer before adding one
// blocks: backpressure, since history lines are never dropped.
const historyQueue = 4096

// historyLinger is how long the first line waits for others before the
// writer writes: in a busy conversation one write then carries many lines
// rather than each line taking a write (and a wake-up of the writer) of its
// own in the middle of the next message's round trip.
const historyLinger = 2 * time.Millisecond

// maxHistoryLine bounds one line read back; messages are at most a few
// datagrams long, so anything larger is corruption.
const maxHistoryLine = 1 << 20

// maxKeptBuffer bounds a contact's line buffer kept between writes.
const maxKeptBuffer = 16 << 10

// maxOpenHistory bounds open history files, so many senders cannot exhaust
// file descriptors.
const maxOpenHistory = 64

func openHistory(dir string, onErr func(error)) (*history, error) {
	dir = filepath.Join(dir, "history")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	h := &history{dir: dir, onErr: onErr, ops: make(chan histOp, historyQueue),
		wake: make(chan struct{}, 1), done: make(chan struct{}), files: map[string]*os.File{}}
	go h.run()
	return h, nil
}

func (h *history) run() {
	defer close(h.done)
	pending := map[string][]byte{} // lines per contact not yet written; empty once flushed
	linger := time.NewTimer(historyLinger)
	defer linger.Stop()
	for op := range h.ops {
		if op.flushed == nil {
			linger.Reset(historyLinger)
			select {
			case <-linger.C:
			case <-h.wake:
			}
		}
		h.take(op, pending)
		h.takeQueued(pending)
		h.flushAll(pending)
	}
	for _, f := range h.files {
		if err := f.Close(); err != nil {
			h.onErr(fmt.Errorf("history: %w", err))
		}
	}
}

// takeQueued takes every op already waiting, so that a burst of lines to
// one file goes out in one write.
func (h *history) takeQueued(pending map[string][]byte) {
	for {
		select {
		case op, ok := <-h.ops:
			if !ok {
				return
			}
			h.take(op, pending)
		default:
			return
		}
	}
}

// take encodes a line into pending, or, for a flush marker, writes
// everything pending and then releases the reader waiting on it.
func (h *history) take(op histOp, pending map[string][]byte) {
	if op.flushed != nil {
		h.flushAll(pending)
		close(op.flushed)
		return
	}
	b := pending[op.key]
	line, err := appendLine(b, &op.rec)
	if err != nil {
		h.onErr(err)
		return
	}
	pending[op.key] = append(line, '\n')
}

// flushAll writes every contact's pending lines. A buffer is kept, emptied,
// for the contact's next lines, and dropped at the next flush that finds it
// still empty (or at once when a burst made it big), so only conversations
// that are going on keep one.
func (h *history) flushAll(pending map[string][]byte) {
	for key, b := range pending {
		if len(b) > 0 {
			if err := h.write(key, b); err != nil {
				h.onErr(err)
			}
		}
		if len(b) == 0 || cap(b) > maxKeptBuffer {
			delete(pending, key)
		} else {
			pending[key] = b[:0]
		}
	}
}

// fileName maps a contact key to a safe file name: keys come from the
// network and may hold anything.
func fileName(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '@', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "%%%04x", r)
		}
	}
	if b.Len() > 200 {
		return b.String()[:200] + ".jsonl"
	}
	return b.String() + ".jsonl"
}

// record is one history line: a whole message, or a status update.
type record struct {
	Message
	Update bool `json:"update,omitempty"`
}

// enqueue hands an op to the writer; false once the history is closed.
func (h *history) enqueue(op histOp) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return false
	}
	h.ops <- op
	return true
}

func (h *history) write(key string, lines []byte) error {
	f, err := h.file(key)
	if err != nil {
		return err
	}
	if _, err := f.Write(lines); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

func (h *history) file(key string) (*os.File, error) {
	if f, ok := h.files[key]; ok {
		return f, nil
	}
	if len(h.files) >= maxOpenHistory {
		for k, f := range h.files { // evict any: reopening is cheap
			f.Close()
			delete(h.files, k)
			break
		}
	}
	f, err := os.OpenFile(filepath.Join(h.dir, fileName(key)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	h.files[key] = f
	return f, nil
}

func (h *history) add(m Message) {
	if !h.enqueue(histOp{key: m.Peer, rec: record{Message: m}}) {
		h.onErr(fmt.Errorf("history closed: message %s not saved", m.ID))
	}
}

func (h *history) update(peer, id string, st Status, errText string) {
	h.enqueue(histOp{key: peer, rec: record{Message: Message{ID: id, Peer: peer, Status: st, Error: errText}, Update: true}})
}

// flush waits until every line added so far is written.
func (h *history) flush() {
	done := make(chan struct{})
	if h.enqueue(histOp{flushed: done}) {
		h.hurry()
		<-done
	}
}

// hurry ends the writer's linger, if it is in one (or else its next).
func (h *history) hurry() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// read returns the last limit messages (all when limit <= 0) of a
// conversation, oldest first, with status updates applied.
func (h *history) read(key string, limit int) ([]Message, error) {
	h.flush()
	f, err := os.Open(filepath.Join(h.dir, fileName(key)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	var msgs []Message
	index := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), maxHistoryLine)
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue // a torn last line after a crash
		}
		if r.Update {
			if i, ok := index[r.ID]; ok {
				msgs[i].Status, msgs[i].Error = r.Status, r.Error
			}
			continue
		}
		index[r.ID] = len(msgs)
		msgs = append(msgs, r.Message)
	}
	if limit > 0 && len(msgs) > limit {
		msgs = msgs[len(msgs)-limit:]
	}
	return msgs, sc.Err()
}

// close writes what is queued, closes the files and stops the writer.
func (h *history) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.ops)
	}
	h.mu.Unlock()
	h.hurry()
	<-h.done
}
