package packaged

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/benchworkload"
	"github.com/k3snet/k3snet/internal/procstat"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// BenchmarkRestart measures what a K3s server's restart with an unchanged manifests directory
// costs the deploy and Helm controllers: 20 manifests and 5 HelmCharts times 1, 10 and 100
// (K3SNET_SCALE_MAX picks the largest, default 1: a first start installs the releases one
// after another, 50 take a while and 500 minutes). Per scale, once, the first start: time
// until every file is applied and every release deployed, its writes, CPU and peak heap.
// Then each op is a restart of both controllers over the same directory and cluster: time
// until the deploy controller's first pass is done and the Helm controller has synced every
// HelmChart, the API requests on the way by verb (writes must be none; Events are counted
// apart), the process's CPU, its peak heap and resident set, and the heap the restarted
// controllers hold. The control plane runs in other processes and is not in these figures;
// the resident set is the whole test process's (its baseline included).
func BenchmarkRestart(b *testing.B) {
	maxScale := benchworkload.ScaleMax(1)
	for _, scale := range []int{1, 10, 100} {
		if scale > maxScale {
			continue
		}
		w := restartWorkload{manifests: 20 * scale, charts: 5 * scale}
		b.Run(fmt.Sprintf("x%d/manifests=%d/charts=%d", scale, w.manifests, w.charts), func(b *testing.B) {
			benchmarkRestart(b, w)
		})
	}
}

func benchmarkRestart(b *testing.B, w restartWorkload) {
	c := cluster.Get(b)
	ns := c.Namespace(b)
	prefix := testcluster.UniqueName("restart")
	cleanupWorkload(b, c, prefix, ns)
	dir := b.TempDir()
	w.write(b, dir, prefix, ns)
	ctx := quietContext(b.Context())
	files := float64(w.manifests + w.charts)

	require.NoError(b, procstat.ResetPeakRSS())
	cpu, heap, start := procstat.SelfCPU(b), procstat.SamplePeakHeap(10*time.Millisecond), time.Now()
	first := startPackaged(b, ctx, c, dir, ns, nil)
	require.NoError(b, first.waitPass(b))
	applied := time.Since(start)
	waitDeployed(b, c, ns, w.charts)
	deployed := time.Since(start)
	firstCPU, firstPeak, firstRSS := procstat.SelfCPU(b)-cpu, heap(), procstat.PeakRSS(b)
	firstWrites := writeCount(first.requests.snapshot(), false)
	first.stop()

	var restarted *packagedStart
	var deployDone, helmDone time.Duration
	var cpuUsed time.Duration
	var peak, held, rss uint64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		before := procstat.LiveHeap()
		require.NoError(b, procstat.ResetPeakRSS())
		b.StartTimer()
		cpu, heap, start := procstat.SelfCPU(b), procstat.SamplePeakHeap(10*time.Millisecond), time.Now()
		restarted = startPackaged(b, ctx, c, dir, ns, nil)
		require.NoError(b, restarted.waitPass(b))
		deployDone = time.Since(start)
		restarted.waitHelmSyncs(b, w.charts)
		helmDone = time.Since(start)
		cpuUsed, peak, rss = procstat.SelfCPU(b)-cpu, heap(), procstat.PeakRSS(b)
		b.StopTimer()
		runtime.GC()
		held = procstat.LiveHeap() - min(procstat.LiveHeap(), before)
		restarted.stop()
		b.StartTimer()
	}
	// Reported after the loop: b.Loop's start drops the metrics reported before it.
	b.ReportMetric(applied.Seconds(), "first-applied-s")
	b.ReportMetric(deployed.Seconds(), "first-deployed-s")
	b.ReportMetric(firstCPU.Seconds(), "first-cpu-s")
	b.ReportMetric(float64(firstPeak)/(1<<20), "first-peak-heap-MiB")
	b.ReportMetric(float64(firstRSS)/(1<<20), "first-peak-rss-MiB")
	b.ReportMetric(float64(firstWrites)/files, "first-writes/file")
	b.ReportMetric(deployDone.Seconds(), "deploy-pass-s")
	b.ReportMetric(helmDone.Seconds(), "helm-synced-s")
	b.ReportMetric(cpuUsed.Seconds(), "cpu-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(held)/(1<<20), "held-heap-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	counts := restarted.requests.snapshot()
	totals := requestTotals(counts)
	b.ReportMetric(float64(writeCount(counts, false)), "writes")
	b.ReportMetric(float64(writeCount(counts, true)), "event-writes")
	for _, verb := range []string{"get", "list", "watch", "discovery"} {
		b.ReportMetric(float64(totals[verb]), verb+"s")
	}
	b.Logf("restart requests: %v", counts)
	if writes := writesOf(counts, false); len(writes) > 0 {
		b.Errorf("a restart with nothing changed wrote %v", writes)
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(load)))
	}
}
