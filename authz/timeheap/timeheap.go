// Package timeheap is the min-heap of keys ordered by a time that the
// in-memory stores (uselimit's counts, ratelimit's buckets) expire their
// keys from, so they free memory by popping, never by scanning a map.
package timeheap

// Entry is a key queued with its time (unix nanoseconds).
type Entry[K any] struct {
	At  int64
	Key K
}

// Heap is a min-heap on At. It is typed rather than container/heap so a
// push does not box (and allocate) each entry; the earliest entry is h[0].
type Heap[K any] []Entry[K]

// Push adds key at time at and sifts it up to its place.
func (h *Heap[K]) Push(at int64, key K) {
	*h = append(*h, Entry[K]{At: at, Key: key})
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if q[parent].At <= q[i].At {
			break
		}
		q[parent], q[i] = q[i], q[parent]
		i = parent
	}
}

// Pop removes and returns the earliest entry; h must not be empty.
func (h *Heap[K]) Pop() Entry[K] {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	*h = q
	for i := 0; ; {
		least := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(q) && q[c].At < q[least].At {
				least = c
			}
		}
		if least == i {
			return top
		}
		q[i], q[least] = q[least], q[i]
		i = least
	}
}

// Due reports whether the earliest entry's time is at or before now.
func (h Heap[K]) Due(now int64) bool {
	return len(h) > 0 && h[0].At <= now
}

// Shrink gives memory back after a mass expiry: append never does.
func (h *Heap[K]) Shrink() {
	if cap(*h) > 1024 && len(*h) < cap(*h)/4 {
		*h = append(Heap[K](nil), *h...)
	}
}
