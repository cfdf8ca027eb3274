package peer

// fifoMap is a map that forgets its oldest entries beyond a bound. The
// node keeps a few such maps of things the network makes it remember
// (sealed messages not yet opened, auto-replies sent): anyone on the LAN
// can add to them, so they must not grow without end.
type fifoMap[K comparable, V any] struct {
	m     map[K]V
	order []K // keys in the order they were first put; may hold removed ones
	max   int
}

// maxRemembered bounds each of the node's fifoMaps: sealed messages
// waiting to be opened, in either direction, and auto-replies sent. Beyond
// it the oldest is forgotten: such a sealed message can no longer be
// opened (or its opening is not reported), a contact may get the away
// text again sooner.
const maxRemembered = 4096

func newFIFOMap[K comparable, V any](max int) *fifoMap[K, V] {
	return &fifoMap[K, V]{m: map[K]V{}, max: max}
}

// put sets k's value; a new key beyond the bound pushes out the oldest.
func (f *fifoMap[K, V]) put(k K, v V) {
	if _, ok := f.m[k]; !ok {
		f.order = append(f.order, k)
	}
	f.m[k] = v
	for len(f.m) > f.max {
		delete(f.m, f.order[0])
		f.order = f.order[1:]
	}
	if len(f.order) > 2*f.max { // mostly keys taken meanwhile
		live := f.order[:0:0]
		for _, k := range f.order {
			if _, ok := f.m[k]; ok {
				live = append(live, k)
			}
		}
		f.order = live
	}
}

func (f *fifoMap[K, V]) get(k K) (V, bool) {
	v, ok := f.m[k]
	return v, ok
}

// take returns k's value and forgets k.
func (f *fifoMap[K, V]) take(k K) (V, bool) {
	v, ok := f.m[k]
	delete(f.m, k)
	return v, ok
}

func (f *fifoMap[K, V]) len() int { return len(f.m) }

func (f *fifoMap[K, V]) clear() {
	clear(f.m)
	f.order = nil
}
