package servicelb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/client-go/tools/cache"
)

func TestWriteMemo(t *testing.T) {
	var m writeMemo[string]
	key := cache.ObjectName{Namespace: "ns", Name: "web"}
	_, ok := m.current(key, "1")
	assert.False(t, ok, "nothing written yet")

	m.remember(key, "1", "ours")
	got, ok := m.current(key, "1")
	assert.True(t, ok, "the cache still shows the version the write was made from")
	assert.Equal(t, "ours", got)

	_, ok = m.current(key, "2")
	assert.False(t, ok, "the cache has moved on: it is the truth")
	_, ok = m.current(key, "1")
	assert.False(t, ok, "and the entry is gone for good")

	m.remember(key, "", "created")
	m.forget(key)
	_, ok = m.current(key, "")
	assert.False(t, ok, "a deleted object is not taken for the state before our create")
}
