// Package procstat reads a process's CPU time and resident memory from /proc, for the
// benchmarks that measure k3snet's own processes.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CPUSeconds is the user plus system CPU time of pid, from /proc/<pid>/stat.
func CPUSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold spaces; the fields after it are fixed:
	// utime and stime are the 12th and 13th after the closing parenthesis.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat: %q", pid, raw)
	}
	var ticks float64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	const clockTicksPerSecond = 100 // USER_HZ on Linux
	return ticks / clockTicksPerSecond, nil
}

// Memory is a process's resident set in MiB. RSS is Anon (heap, stacks, the Go runtime's own
// memory) plus File: the pages of the executable and other mapped files, clean and shared
// with the page cache. On kernels that cache files in large folios (ext4 and XFS on Linux
// 6.x) a touched page maps its whole folio, so File approaches the size of the binary's text
// and read-only data.
type Memory struct {
	RSS, Anon, File float64
	// Peak is the peak resident set (VmHWM) since start or the last ResetPeakRSS.
	Peak float64
}

// ReadMemory reads pid's resident set from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	fields := map[string]*float64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File, "VmHWM:": &m.Peak}
	seen := 0
	for line := range strings.Lines(string(raw)) {
		key, rest, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		if dst, ok := fields[strings.TrimSpace(key)]; ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return Memory{}, fmt.Errorf("/proc/%d/status %s: %w", pid, key, err)
			}
			*dst = kb / 1024
			seen++
		}
	}
	if seen != len(fields) {
		return Memory{}, fmt.Errorf("no VmRSS, RssAnon, RssFile and VmHWM in /proc/%d/status", pid)
	}
	return m, nil
}

// Idle is what a process used over a window: its CPU as a percentage of one core, and its
// resident memory at the end.
type Idle struct {
	CPUPercent float64
	Memory
}

// MeasureIdle samples pid's CPU time, waits window and reads its CPU time and memory again.
func MeasureIdle(pid int, window time.Duration) (Idle, error) {
	before, err := CPUSeconds(pid)
	if err != nil {
		return Idle{}, err
	}
	time.Sleep(window)
	after, err := CPUSeconds(pid)
	if err != nil {
		return Idle{}, err
	}
	mem, err := ReadMemory(pid)
	return Idle{CPUPercent: 100 * (after - before) / window.Seconds(), Memory: mem}, err
}

// Report reports the sample as benchmark metrics named prefix + cpu-%, rss-MB, rss-file-MB
// and rss-anon-MB.
func (s Idle) Report(b *testing.B, prefix string) {
	b.ReportMetric(s.CPUPercent, prefix+"cpu-%")
	b.ReportMetric(s.RSS, prefix+"rss-MB")
	// The binary's mapped pages (shared with the page cache) and the rest.
	b.ReportMetric(s.File, prefix+"rss-file-MB")
	b.ReportMetric(s.Anon, prefix+"rss-anon-MB")
}
