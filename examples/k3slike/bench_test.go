package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/netpolworkload"
	"github.com/k3snet/k3snet/internal/procstat"
)

// idleWindow is how long the server is left alone before its CPU use and RSS are read.
const idleWindow = 30 * time.Second

// BenchmarkServerStartAndIdle measures k3slike as a user meets it, every controller on
// (netpol included, so it runs in a network namespace of its own): the first start on a new
// data dir until the ready line and until Traefik's HelmChart has its helm-install job (the
// simulated node runs no pod; Helm itself runs in the job's pod, not in k3slike),
// a restart on the same data dir (k3slike read from disk, not from the page cache the build
// and the first start filled) until the ready line, and then, idle, the CPU share and RSS
// of the k3slike process itself (the control-plane processes are its children and are not
// counted). With $K3SNET_IDLE_WORKLOAD_SCALE set it then loads the NetworkPolicy workload of
// record, times that value, around the server and measures it idle again. Run it with
// -benchtime=1x: one iteration is a whole server life.
func BenchmarkServerStartAndIdle(b *testing.B) {
	netns.Require(b)
	for b.Loop() {
		node := netns.NewT(b, "k3sbench")
		c := newCluster(b, "bench", "192.0.2.95")
		c.netns = node.Name()

		start := time.Now()
		srv := c.start()
		b.ReportMetric(time.Since(start).Seconds(), "first-ready-s")
		c.eventually("Traefik's HelmChart has its helm-install job", func() bool {
			return c.value("{.status.jobName}", "-n", "kube-system", "helmchart", "traefik") == "helm-install-traefik"
		})
		b.ReportMetric(time.Since(start).Seconds(), "all-deployed-s")
		srv.stop(b)

		// The measured start reads k3slike from disk, as a node does after boot.
		require.NoError(b, procstat.EvictFromPageCache(c.exe))
		start = time.Now()
		srv = c.start()
		b.ReportMetric(time.Since(start).Seconds(), "restart-ready-s")
		time.Sleep(5 * time.Second) // let the start-up resyncs finish
		pid := srv.cmd.Process.Pid
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		require.NoError(b, err)
		require.Equal(b, "k3slike", strings.TrimSpace(string(comm)), "ip netns exec runs the server in its own process")
		idle, err := procstat.MeasureIdle(pid, idleWindow)
		require.NoError(b, err)
		idle.Report(b, "idle-")
		if scale := workloadScale(b); scale > 0 {
			idleWithWorkload(b, c, node, pid, netpolworkload.OfRecord(scale))
		}
		srv.stop(b)
	}
}

// workloadScaleEnv makes BenchmarkServerStartAndIdle load the NetworkPolicy workload of
// record, times its value, around the idle server and measure it again: 1 is the workload of
// record (50 nodes, 100 namespaces, 5,000 pods of which 100 on the server's node, 1,000
// policies), 10 ten times it. Unset or 0 measures the empty cluster only.
const workloadScaleEnv = "K3SNET_IDLE_WORKLOAD_SCALE"

func workloadScale(b *testing.B) int {
	v := os.Getenv(workloadScaleEnv)
	if v == "" {
		return 0
	}
	scale, err := strconv.Atoi(v)
	require.NoError(b, err, "$%s", workloadScaleEnv)
	return scale
}

// idleWithWorkload loads w around the running server (its own node is w's node 0), waits
// until the server's NetworkPolicy controller has every local pod's rules in its network
// namespace, and reports the server's CPU and RSS over another idle window.
func idleWithWorkload(b *testing.B, c *cluster, node *netns.Namespace, pid int, w netpolworkload.Workload) {
	w.LocalNode = c.nodeName
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	require.NoError(b, err)
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.Dial = node.DialContext // the server, and its API server, run in the node's namespace
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(b, err)
	start := time.Now()
	require.NoError(b, netpolworkload.Load(b.Context(), client, w))
	b.ReportMetric(time.Since(start).Seconds(), "workload-load-s")
	require.NoError(b, wait.PollUntilContextTimeout(b.Context(), time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := netpolworkload.ProgrammedPods(ctx, node.Exec)
		// The server's own pods (CoreDNS, Traefik, its LB pod) run on that node too.
		return n >= w.Local, err
	}), "every local pod's rules in place")
	time.Sleep(5 * time.Second) // let the resyncs the load caused finish
	idle, err := procstat.MeasureIdle(pid, idleWindow)
	require.NoError(b, err)
	idle.Report(b, "workload-idle-")
}
