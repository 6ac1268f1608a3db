package procstat

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadMemoryOfThisProcessAddsUp(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, m.Anon)
	assert.Positive(t, m.File)
	// VmRSS is RssAnon + RssFile + RssShmem, each rounded to a kB.
	assert.InDelta(t, m.RSS, m.Anon+m.File, 1)
}

func TestCPUSecondsOfThisProcessGrowsWithWork(t *testing.T) {
	before, err := CPUSeconds(os.Getpid())
	require.NoError(t, err)
	// Spin until the kernel has counted a tick (10 ms) of this process's CPU time.
	for {
		after, err := CPUSeconds(os.Getpid())
		require.NoError(t, err)
		if after > before {
			return
		}
	}
}

func TestReadMemoryOfAMissingProcessFails(t *testing.T) {
	_, err := ReadMemory(-1)
	assert.Error(t, err)
}
