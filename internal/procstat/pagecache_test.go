package procstat

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestEvictFromPageCacheDropsAFilesPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "binary")
	require.NoError(t, os.WriteFile(path, make([]byte, 1<<20), 0o644)) // just written: cached, dirty
	_, err := os.ReadFile(path)
	require.NoError(t, err)
	before, err := cachedPages(path)
	require.NoError(t, err)
	require.Positive(t, before, "a file just written and read is cached")

	require.NoError(t, EvictFromPageCache(path))
	after, err := cachedPages(path)
	require.NoError(t, err)
	assert.Zero(t, after, "pages still cached of %d", before)
}

func TestEvictFromPageCacheOfAMissingFileFails(t *testing.T) {
	assert.Error(t, EvictFromPageCache(filepath.Join(t.TempDir(), "missing")))
}

// cachedPages counts path's pages in the page cache (mincore over a mapping of it).
func cachedPages(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(data)
	pageSize := os.Getpagesize()
	vec := make([]byte, (len(data)+pageSize-1)/pageSize)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, errno
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n, nil
}
