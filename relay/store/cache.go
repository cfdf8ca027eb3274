package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// cache is an in-memory copy of a key-value bucket, kept current by a watch on it.
// Writers wait (waitApplied) until their own write has reached the cache, so a
// caller reads its own writes; in a cluster, writes of other relays arrive shortly.
type cache[T any] struct {
	w jetstream.KeyWatcher

	mu      sync.RWMutex
	items   map[string]T
	applied uint64        // highest bucket revision applied
	changed chan struct{} // closed and replaced whenever applied grows
}

// watch loads kv into a cache and keeps it current until Close. onDelete, if set, is
// called for keys deleted after the initial load.
func watch[T any](ctx context.Context, s *Store, kv jetstream.KeyValue,
	decode func([]byte) (T, error), onDelete func(key string)) (*cache[T], error) {
	w, err := kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", kv.Bucket(), err)
	}
	c := &cache[T]{w: w, items: make(map[string]T), changed: make(chan struct{})}
	loaded := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.run(s, kv.Bucket(), decode, onDelete, loaded)
	}()
	select {
	case <-loaded:
		return c, nil
	case <-ctx.Done():
		w.Stop()
		return nil, fmt.Errorf("watch %s: %w", kv.Bucket(), ctx.Err())
	}
}

func (c *cache[T]) run(s *Store, bucket string, decode func([]byte) (T, error),
	onDelete func(string), loaded chan struct{}) {
	initial := true
	for e := range c.w.Updates() {
		if e == nil { // end of the initial values
			if initial {
				initial = false
				close(loaded)
			}
			continue
		}
		key := e.Key()
		switch e.Operation() {
		case jetstream.KeyValuePut:
			v, err := decode(e.Value())
			if err != nil {
				s.log.Warn("undecodable entry", "bucket", bucket, "key", key, "err", err)
				break
			}
			c.mu.Lock()
			c.items[key] = v
			c.mu.Unlock()
		default: // delete or purge
			c.mu.Lock()
			_, had := c.items[key]
			delete(c.items, key)
			c.mu.Unlock()
			if had && !initial && onDelete != nil {
				onDelete(key)
			}
		}
		c.advance(e.Revision())
	}
}

func (c *cache[T]) advance(rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev > c.applied {
		c.applied = rev
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// waitApplied returns once the cache has applied revision rev.
func (c *cache[T]) waitApplied(ctx context.Context, rev uint64) error {
	for {
		c.mu.RLock()
		applied, changed := c.applied, c.changed
		c.mu.RUnlock()
		if applied >= rev {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *cache[T]) get(key string) (T, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.items[key]
	return v, ok
}

func (c *cache[T]) all() []T {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]T, 0, len(c.items))
	for _, v := range c.items {
		out = append(out, v)
	}
	return out
}

func (c *cache[T]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}

func (c *cache[T]) stop() { c.w.Stop() }

// syncWith waits until c has applied every write made to kv so far; for writes such
// as Delete that do not report their revision.
func syncWith[T any](ctx context.Context, c *cache[T], kv jetstream.KeyValue) error {
	st, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return fmt.Errorf("bucket %s: unexpected status type %T", kv.Bucket(), st)
	}
	return c.waitApplied(ctx, bs.StreamInfo().State.LastSeq)
}
