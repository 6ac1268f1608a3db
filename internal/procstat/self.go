package procstat

import (
	"os"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// SelfCPU is this process's user plus system CPU time so far. In an integration benchmark
// that is the controller under test, not the control plane, which runs in child processes.
func SelfCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LiveHeap is the heap in use by objects; after a runtime.GC, the live heap.
func LiveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// SamplePeakHeap samples LiveHeap every interval until the returned function is called,
// which returns the peak seen.
func SamplePeakHeap(interval time.Duration) (stop func() uint64) {
	var peak atomic.Uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			peak.Store(max(peak.Load(), LiveHeap()))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

// ResetPeakRSS sets this process's peak resident set (VmHWM) back to its resident set now
// (proc(5), /proc/<pid>/clear_refs), so that PeakRSS measures from here.
func ResetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PeakRSS is this process's peak resident set (VmHWM) in bytes.
func PeakRSS(tb testing.TB) uint64 {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		tb.Fatal(err)
	}
	return uint64(m.Peak * (1 << 20))
}
