package servicelb

import (
	"sync"

	"k8s.io/client-go/tools/cache"
)

// writeMemo remembers what this controller last wrote to each object, with the
// resourceVersion the cache showed for it before the write ("" for an object the cache did
// not have). A sync that runs before the informer has delivered the write reads the old
// version from the cache; while it still does, the remembered object is what the API server
// holds, and comparing against it keeps the sync from writing the same thing again and
// emitting its Event twice.
type writeMemo[T any] struct {
	mu      sync.Mutex
	entries map[cache.ObjectName]memoEntry[T]
}

type memoEntry[T any] struct {
	before  string
	written T
}

// remember records written as the object's content after a write made from version before.
func (m *writeMemo[T]) remember(key cache.ObjectName, before string, written T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[cache.ObjectName]memoEntry[T]{}
	}
	m.entries[key] = memoEntry[T]{before: before, written: written}
}

// current returns what was last written when the cache still shows the version the write
// was made from; once the cache has moved on, the entry is dropped and the cache is the truth.
func (m *writeMemo[T]) current(key cache.ObjectName, cached string) (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if ok && e.before == cached {
		return e.written, true
	}
	delete(m.entries, key)
	var zero T
	return zero, false
}

// forget drops the entry, for an object that was deleted: the cache then shows it absent
// again, which must not be taken for the state before our create.
func (m *writeMemo[T]) forget(key cache.ObjectName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
}
