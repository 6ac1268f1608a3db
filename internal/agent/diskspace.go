package agent

import (
	"fmt"
	"syscall"
)

// EvictionFreePercent is the kubelet's hard eviction threshold for nodefs.available and
// imagefs.available, as K3s sets it: below it the kubelet evicts every pod it can, so a node
// on a nearly full disk stops its pods a second after they start.
const EvictionFreePercent = 5

// FreePercent is the share of the filesystem holding path that an unprivileged writer can
// still use (statfs(2) f_bavail over f_blocks), which is what the kubelet's
// nodefs.available compares.
func FreePercent(path string) (float64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	if st.Blocks == 0 {
		return 100, nil
	}
	return 100 * float64(st.Bavail) / float64(st.Blocks), nil
}

// diskSpaceProblem explains why pods on a node whose data dir is on a filesystem with free
// percent left would be evicted, or returns nil when they would not.
func diskSpaceProblem(path string, free float64) error {
	if free >= EvictionFreePercent {
		return nil
	}
	return fmt.Errorf("only %.1f%% of the filesystem holding %s is free: the kubelet evicts pods below %d%% (evictionHard nodefs.available and imagefs.available)", free, path, EvictionFreePercent)
}

// CheckDiskSpace returns an error naming the problem when the filesystem holding path is
// below the kubelet's eviction threshold.
func CheckDiskSpace(path string) error {
	free, err := FreePercent(path)
	if err != nil {
		return err
	}
	return diskSpaceProblem(path, free)
}
