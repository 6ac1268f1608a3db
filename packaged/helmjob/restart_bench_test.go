package helmjob

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/benchworkload"
	"github.com/k3snet/k3snet/internal/procstat"
)

// BenchmarkRestart measures what a server's restart with nothing changed costs the helm
// controller that k3slike and `k3snet controllers` run: 5 HelmCharts times 1, 10 and 100
// (K3SNET_SCALE_MAX picks the largest, default 1), each installed once by its job (kwok
// completes the jobs' pods). Each op starts a new controller over the same charts and ends
// when it has synced every one: the time, its API reads and writes (writes must be none), and
// the process's CPU.
func BenchmarkRestart(b *testing.B) {
	for _, scale := range []int{1, 10, 100} {
		if scale > benchworkload.ScaleMax(1) {
			continue
		}
		charts := 5 * scale
		b.Run(fmt.Sprintf("x%d/charts=%d", scale, charts), func(b *testing.B) { benchmarkRestart(b, charts) })
	}
}

func benchmarkRestart(b *testing.B, charts int) {
	e := startControllerEnv(b) // installs every chart once, and runs until the benchmark ends
	for i := range charts {
		e.createChart(b, fmt.Sprintf("chart-%d", i), map[string]any{"chartContent": "dGd6", "valuesContent": fmt.Sprintf("replicas: %d\n", i)})
	}
	err := wait.PollUntilContextTimeout(b.Context(), 200*time.Millisecond, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		done := 0
		for i := range charts {
			job := e.job(b, fmt.Sprintf("helm-install-chart-%d", i))
			if job != nil && jobCondition(job, batchv1.JobComplete) && e.chart(b, fmt.Sprintf("chart-%d", i)).Status.JobName == job.Name {
				done++
			}
		}
		return done == charts, nil
	})
	require.NoError(b, err, "every chart's install job completes")

	var took, cpu time.Duration
	var writes []string
	var reads int64
	for b.Loop() {
		restarted := e.countedController(b)
		ctx, stop := context.WithCancel(testContext(b))
		startCPU, start := procstat.SelfCPU(b), time.Now()
		require.NoError(b, restarted.ctrl.Start(ctx, nil))
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
			return successfulSyncs(b, restarted.reg) >= float64(charts), nil
		})
		require.NoError(b, err, "the restarted controller syncs every chart")
		took, cpu = time.Since(start), procstat.SelfCPU(b)-startCPU
		writes, reads = restarted.requests.Since(0), restarted.requests.Reads()
		stop()
	}
	// Reported after the loop: b.Loop's start drops the metrics reported before it.
	b.ReportMetric(took.Seconds(), "synced-s")
	b.ReportMetric(cpu.Seconds(), "cpu-s")
	b.ReportMetric(float64(reads), "reads")
	b.ReportMetric(float64(reads)/float64(charts), "reads/chart")
	b.ReportMetric(float64(len(writes)), "writes")
	if len(writes) > 0 {
		b.Errorf("a restart with nothing changed wrote %v", writes)
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(load)))
	}
}
