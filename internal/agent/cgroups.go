package agent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// cgroupMounts lists the mount points of every cgroup hierarchy (v1 and v2) in mountinfo.
func cgroupMounts(mountinfo string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		// "36 35 0:31 / /sys/fs/cgroup/memory rw,... - cgroup cgroup rw,memory"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, fsFields := strings.Fields(pre), strings.Fields(post)
		if len(fields) >= 5 && len(fsFields) >= 1 && (fsFields[0] == "cgroup" || fsFields[0] == "cgroup2") {
			out = append(out, fields[4])
		}
	}
	return out
}

// ensureCgroupRoot creates the kubelet's --cgroup-root in every cgroup hierarchy (the kubelet
// expects it to exist), copying cpuset's CPUs and memory nodes from the parent, which a new
// cpuset cgroup starts without.
func ensureCgroupRoot(root string) error {
	if root == "" || root == "/" {
		return nil
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading mountinfo: %w", err)
	}
	var errs []error
	for _, mount := range cgroupMounts(string(info)) {
		dir := filepath.Join(mount, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("creating cgroup %s: %w", dir, err))
			continue
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if cur, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.TrimSpace(string(cur)) == "" {
				parent, err := os.ReadFile(filepath.Join(mount, f))
				if err == nil {
					errs = append(errs, os.WriteFile(filepath.Join(dir, f), parent, 0o644))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// RemoveCgroupRoot removes a --cgroup-root created for a node, deepest cgroups first, in
// every hierarchy. A cgroup that still has processes cannot be removed; the error names it.
func RemoveCgroupRoot(root string) error {
	if root == "" || root == "/" {
		return nil
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading mountinfo: %w", err)
	}
	var errs []error
	for _, mount := range cgroupMounts(string(info)) {
		dir := filepath.Join(mount, root)
		var dirs []string
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := removeCgroup(dirs[i]); err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroup removes one empty cgroup. A process just killed can keep its cgroup busy for a
// moment (a thread group leader that has exited while its other threads are still being torn
// down is counted until the last one goes), so EBUSY is retried for a few seconds.
func removeCgroup(dir string) error {
	var err error
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		err = os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || wait > 2*time.Second {
			return err
		}
		time.Sleep(wait)
	}
}
