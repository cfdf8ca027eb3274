package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	benchSenders  = 32
	benchBodySize = 256
)

// runSenders runs send b.N times split over benchSenders goroutines and reports msg/s.
func runSenders(b *testing.B, send func(sender, n int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range benchSenders {
		wg.Go(func() {
			for {
				n := int(next.Add(1))
				if n > b.N {
					return
				}
				if err := send(i, n); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// BenchmarkEnqueue measures durable enqueue throughput with 32 concurrent senders,
// each message to one of 32 recipients, for both sync policies, beside two baselines
// from the same run: 32 goroutines appending records of the same size to one plain
// file under a mutex, with and without an fsync per write. The folders are on the
// disk of os.TempDir (set TMPDIR to measure another).
func BenchmarkEnqueue(b *testing.B) {
	body := make([]byte, benchBodySize)
	for _, syncAlways := range []bool{false, true} {
		name := "default"
		if syncAlways {
			name = "sync_always"
		}
		b.Run(name, func(b *testing.B) {
			s := openStore(b, Config{SyncAlways: syncAlways, MaxInbox: 1 << 30,
				Logger: slog.New(slog.DiscardHandler)})
			peers := make([]string, benchSenders)
			for i := range peers {
				peers[i] = fmt.Sprintf("peer%02d", i)
			}
			enroll(b, s, peers...)
			ctx := context.Background()
			runSenders(b, func(sender, n int) error {
				_, _, err := s.Enqueue(ctx, Envelope{
					ID:   fmt.Sprintf("%s/%d", peers[sender], n),
					From: peers[sender],
					To:   peers[(sender+n)%benchSenders],
					Kind: KindMsg,
					Sent: time.Now(),
					Body: body,
				})
				return err
			})
		})
	}
	for _, mode := range []string{"write", "write_fsync", "write_group_fsync"} {
		b.Run("baseline_file_"+mode, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			w := &fileLog{f: f, fsync: mode == "write_fsync", group: mode == "write_group_fsync"}
			w.cond = sync.NewCond(&w.mu)
			// The record: body plus roughly what the store adds (subject, headers).
			rec := make([]byte, benchBodySize+160)
			runSenders(b, func(int, int) error { return w.append(rec) })
		})
	}
}

// fileLog is the baseline: records appended to one file under a mutex, optionally
// with an fsync per record, or with group commit (one fsync covers every record
// written before it started, so concurrent writers share it).
type fileLog struct {
	f            *os.File
	fsync, group bool

	mu              sync.Mutex
	cond            *sync.Cond
	written, synced int64
	syncing         bool
}

func (w *fileLog) append(rec []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.f.Write(rec); err != nil {
		return err
	}
	w.written++
	switch {
	case w.fsync:
		return w.f.Sync()
	case !w.group:
		return nil
	}
	mine := w.written
	for w.synced < mine {
		if w.syncing {
			w.cond.Wait()
			continue
		}
		w.syncing = true
		target := w.written
		w.mu.Unlock()
		err := w.f.Sync()
		w.mu.Lock()
		w.syncing = false
		if err == nil {
			w.synced = target
		}
		w.cond.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkDeliverAck measures one session reading a backlog and acknowledging every
// message (ackEvery=1, the worst case) or every 64th.
func BenchmarkDeliverAck(b *testing.B) {
	for _, ackEvery := range []int{1, 64} {
		b.Run(fmt.Sprintf("ack_every_%d", ackEvery), func(b *testing.B) {
			s := openStore(b, Config{MaxInbox: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
			enroll(b, s, "alice", "bob")
			ctx := context.Background()
			body := make([]byte, benchBodySize)
			for n := range b.N {
				e := Envelope{ID: fmt.Sprintf("alice/%d", n), From: "alice", To: "bob", Kind: KindMsg, Body: body}
				if _, _, err := s.Enqueue(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			in, err := s.Inbox(ctx, "bob")
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for n := 1; n <= b.N; n++ {
				d, err := in.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if n%ackEvery == 0 || n == b.N {
					if err := in.Ack(d.Seq); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
		})
	}
}
