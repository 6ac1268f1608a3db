package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/netpolworkload"
	"github.com/k3snet/k3snet/internal/procstat"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// nodeScaleEnv scales BenchmarkNodeMemory's workload: 1 (the default) is the workload of
// record, 10 is ten times it (about 50,000 pods to create, several minutes on kine).
const nodeScaleEnv = "K3SNET_NODE_BENCH_SCALE"

// nodeIdleWindow is how long `k3snet node` idles after its first sync before its RSS is read.
const nodeIdleWindow = 30 * time.Second

// BenchmarkNodeMemory runs `k3snet node` for node-0 of the NetworkPolicy workload of record
// (50 nodes, 100 namespaces, 5,000 pods of which 100 on node-0, 1,000 policies), loaded into
// the real API server, in a network namespace that plays the node: the time from start to
// every local pod's rules in place, then, after an idle window, its RSS (split into the
// binary's mapped pages and anonymous memory) and idle CPU. Run it with -benchtime=1x.
func BenchmarkNodeMemory(b *testing.B) {
	netns.Require(b)
	scale := 1
	if v := os.Getenv(nodeScaleEnv); v != "" {
		var err error
		scale, err = strconv.Atoi(v)
		require.NoError(b, err, "$%s", nodeScaleEnv)
	}
	w := netpolworkload.OfRecord(scale)
	c := cluster.Get(b)
	loadStart := time.Now()
	b.Cleanup(func() { _ = netpolworkload.Unload(context.Background(), c.Client, w) })
	require.NoError(b, netpolworkload.Load(b.Context(), c.Client, w))
	b.Logf("loaded %+v in %s", w, time.Since(loadStart).Round(time.Second))
	// The node build is what the node DaemonSet runs; the full build (every command) is
	// measured beside it, as the same node's part in a binary that links everything.
	for _, build := range []struct{ name, tags string }{{"node", "k3snet_node"}, {"full", ""}} {
		exe := binaryWithTags(b, build.tags)
		b.Run("build="+build.name, func(b *testing.B) {
			for b.Loop() {
				runNodeIdle(b, c, exe, w.Local)
			}
		})
	}
}

// runNodeIdle runs `k3snet node` (the binary exe) for node-0 in a new network namespace
// until its local pods' chains are in place, idles, and reports its memory and CPU.
func runNodeIdle(b *testing.B, c *testcluster.Cluster, exe string, localPods int) {
	node := netns.NewT(b, "k3snode")
	apiServer := strings.TrimPrefix(c.Config.Host, "https://")
	kubeconfig := kubeconfigWith(b, c, "https://"+proxyIntoNetns(b, node, apiServer), "")
	env := []string{"NODE_NAME=" + netpolworkload.NodeName(0), "NODE_IP=192.0.2.78", "POD_NAMESPACE=default"}
	// k3snet is read from disk, as a node does after boot (procstat.EvictFromPageCache).
	require.NoError(b, procstat.EvictFromPageCache(exe))
	start := time.Now()
	p := startBinary(b, exe, []string{"ip", "netns", "exec", node.Name()}, env, "node", "--kubeconfig="+kubeconfig,
		"--metrics-bind-address=127.0.0.1:0")
	require.NoError(b, wait.PollUntilContextTimeout(b.Context(), 100*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := netpolworkload.ProgrammedPods(ctx, node.Exec)
		return n == localPods, err
	}), "every local pod's rules in place")
	b.ReportMetric(time.Since(start).Seconds(), "rules-live-s")
	pid := p.cmd.Process.Pid // ip netns exec execs k3snet in its own process
	idle, err := procstat.MeasureIdle(pid, nodeIdleWindow)
	require.NoError(b, err)
	idle.Report(b, "idle-")
	p.stop(b)
}
