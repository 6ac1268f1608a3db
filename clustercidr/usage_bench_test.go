package clustercidr

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startUsage starts measuring this process: it resets the peak RSS (clear_refs 5) and samples
// the live heap every 10 ms. The returned function stops and returns the CPU time used since
// (user plus system), the peak live heap and the peak RSS.
func startUsage(b *testing.B) func() (cpu time.Duration, heap, rss uint64) {
	b.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not reset, so it is the process's lifetime peak: %v", err)
	}
	cpu0 := selfCPU(b)
	heapObjects := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(heapObjects)
			peak = max(peak, heapObjects[0].Value.Uint64())
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	return func() (time.Duration, uint64, uint64) {
		close(stop)
		<-stopped
		return selfCPU(b) - cpu0, peak, statusKB(b, "/proc/self/status", "VmHWM:") << 10
	}
}

// selfCPU is this process's user plus system CPU time so far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statusKB reads one "Key: N kB" line of a /proc status file.
func statusKB(b *testing.B, path, key string) uint64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for line := range bytes.Lines(raw) {
		if v, ok := bytes.CutPrefix(line, []byte(key)); ok {
			kb, _ := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			return kb
		}
	}
	return 0
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
