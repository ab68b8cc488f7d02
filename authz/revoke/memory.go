package revoke

import (
	"context"
	"sync"
	"time"
)

// memory keeps the set in this process only.
type memory struct {
	mu  sync.Mutex
	set map[string]Revocation
}

func newMemory() *memory { return &memory{set: map[string]Revocation{}} }

func (m *memory) put(_ context.Context, r Revocation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set[r.ID] = r
	return nil
}

func (m *memory) remove(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.set[id]
	delete(m.set, id)
	return ok, nil
}

// load returns the revocations still in force and forgets the lapsed ones.
func (m *memory) load(_ context.Context, now time.Time) ([]Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Revocation, 0, len(m.set))
	for id, r := range m.set {
		if !r.Until.After(now) {
			delete(m.set, id)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// watch has nothing to do: every change is made through this process's Set,
// which reloads after it.
func (m *memory) watch(context.Context, func()) {}

func (m *memory) close() {}
