package clustercidr

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/k3snet/k3snet/internal/procstat"
)

// startUsage starts measuring this process: it resets the peak RSS (clear_refs 5) and samples
// the live heap every 10 ms. The returned function stops and returns the CPU time used since
// (user plus system), the peak live heap and the peak RSS.
func startUsage(b *testing.B) func() (cpu time.Duration, heap, rss uint64) {
	b.Helper()
	if err := procstat.ResetPeakRSS(); err != nil {
		b.Logf("peak RSS not reset, so it is the process's lifetime peak: %v", err)
	}
	cpu0 := procstat.SelfCPU(b)
	stopHeap := procstat.SamplePeakHeap(10 * time.Millisecond)
	return func() (time.Duration, uint64, uint64) {
		peak := stopHeap()
		return procstat.SelfCPU(b) - cpu0, peak, procstat.PeakRSS(b)
	}
}

// childrenCPU is the user plus system CPU time so far of this process's children: the
// control plane (kine, kube-apiserver, kube-controller-manager, kube-scheduler, kwok).
func childrenCPU(b *testing.B) time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := strconv.Itoa(os.Getpid())
	var ticks uint64
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ... utime(14) stime(15); comm may hold spaces, so split
		// after its closing parenthesis.
		i := bytes.LastIndexByte(raw, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(raw[i+1:])
		if len(f) < 13 || string(f[1]) != parent {
			continue
		}
		u, _ := strconv.ParseUint(string(f[11]), 10, 64)
		s, _ := strconv.ParseUint(string(f[12]), 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/*/stat times: 100 on Linux for every architecture Go supports.
const clockTicks = 100
