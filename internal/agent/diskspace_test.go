package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDiskSpaceProblem(t *testing.T) {
	for _, tc := range []struct {
		free float64
		want string
	}{
		{free: 50},
		{free: EvictionFreePercent},
		{free: 4.99, want: "only 5.0% of the filesystem holding /data is free: the kubelet evicts pods below 5% (evictionHard nodefs.available and imagefs.available)"},
		{free: 0, want: "only 0.0% of the filesystem holding /data is free"},
	} {
		err := diskSpaceProblem("/data", tc.free)
		if tc.want == "" {
			assert.NoError(t, err, "free %v%%", tc.free)
			continue
		}
		require.Error(t, err, "free %v%%", tc.free)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestFreePercentOfTheTempDir(t *testing.T) {
	free, err := FreePercent(t.TempDir())
	require.NoError(t, err)
	assert.True(t, free > 0 && free <= 100, "free %v%%", free)
	_, err = FreePercent("/does/not/exist")
	assert.Error(t, err)
}
