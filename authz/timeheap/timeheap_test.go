package timeheap

import "testing"

func TestHeapPopsInOrder(t *testing.T) {
	var h Heap[int]
	// A fixed pseudo-random sequence with duplicates.
	x := int64(7)
	for i := range 5000 {
		x = (x*1103515245 + 12345) % 2147483648
		h.Push(x%1000, i)
	}
	prev := int64(-1)
	for len(h) > 0 {
		at := h.Pop().At
		if at < prev {
			t.Fatalf("popped %d after %d", at, prev)
		}
		prev = at
	}
	h.Shrink()
	if cap(h) > 1024 {
		t.Fatalf("empty heap kept capacity %d", cap(h))
	}
}

func TestDue(t *testing.T) {
	var h Heap[string]
	if h.Due(10) {
		t.Fatal("an empty heap has nothing due")
	}
	h.Push(20, "b")
	h.Push(10, "a")
	if !h.Due(10) || h.Due(9) {
		t.Fatal("Due does not follow the earliest entry")
	}
	if e := h.Pop(); e.Key != "a" || e.At != 10 {
		t.Fatalf("popped %+v, want a at 10", e)
	}
}
