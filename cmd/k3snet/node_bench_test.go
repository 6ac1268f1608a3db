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
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

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
// every local pod's chain in place, then, after an idle window, its RSS (split into the
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
	loadWorkload(b, c, w)
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
	start := time.Now()
	p := startBinary(b, exe, []string{"ip", "netns", "exec", node.Name()}, env, "node", "--kubeconfig="+kubeconfig,
		"--metrics-bind-address=127.0.0.1:0")
	require.NoError(b, wait.PollUntilContextTimeout(b.Context(), 100*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		rules, err := node.Exec(ctx, "iptables-save", "-t", "filter")
		return err == nil && strings.Count(rules, ":KUBE-POD-FW-") == localPods, nil
	}), "every local pod's chain in place")
	b.ReportMetric(time.Since(start).Seconds(), "rules-live-s")
	pid := p.cmd.Process.Pid // ip netns exec execs k3snet in its own process
	cpuBefore, err := procstat.CPUSeconds(pid)
	require.NoError(b, err)
	time.Sleep(nodeIdleWindow)
	cpuAfter, err := procstat.CPUSeconds(pid)
	require.NoError(b, err)
	mem, err := procstat.ReadMemory(pid)
	require.NoError(b, err)
	b.ReportMetric(100*(cpuAfter-cpuBefore)/nodeIdleWindow.Seconds(), "idle-cpu-%")
	b.ReportMetric(mem.RSS, "rss-MB")
	b.ReportMetric(mem.File, "rss-file-MB")
	b.ReportMetric(mem.Anon, "rss-anon-MB")
	p.stop(b)
}

// loadWorkload creates w's nodes (out of kwok's hands: the benchmark reports its pods
// Running itself, with the workload's addresses), namespaces, pods and policies, with a few
// writers in parallel. The namespaces and nodes go when the benchmark ends.
func loadWorkload(b *testing.B, c *testcluster.Cluster, w netpolworkload.Workload) {
	b.Helper()
	ctx := b.Context()
	nodes := make([]*corev1.Node, 0, w.Nodes)
	for i := range w.Nodes {
		cidr := fmt.Sprintf("10.42.%d.0/24", i)
		if i == 0 {
			cidr = w.PodCIDR().String()
		} else if w.Scaled() {
			cidr = fmt.Sprintf("10.%d.%d.0/24", 64+i>>8, i&0xff)
		}
		nodes = append(nodes, testcluster.Node(netpolworkload.NodeName(i), testcluster.Unmanaged(), testcluster.PodCIDRs(cidr)))
	}
	c.AddNodes(b, nodes...)
	namespaces := w.NamespaceObjects()
	b.Cleanup(func() {
		for _, ns := range namespaces {
			_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		}
	})
	parallel(b, len(namespaces), func(i int) error {
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, namespaces[i], metav1.CreateOptions{}); ignoreExists(err) != nil {
			return err
		}
		// Pods are refused until their ServiceAccount exists, which the controller manager
		// makes in its own time.
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespaces[i].Name}}
		_, err := c.Client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{})
		return ignoreExists(err)
	})
	pods := w.PodObjects()
	parallel(b, len(pods), func(i int) error { return createRunningPod(ctx, c.Client, pods[i]) })
	policies := w.PolicyObjects()
	parallel(b, len(policies), func(i int) error {
		_, err := c.Client.NetworkingV1().NetworkPolicies(policies[i].Namespace).Create(ctx, policies[i], metav1.CreateOptions{})
		return ignoreExists(err)
	})
}

// createRunningPod creates pod and then writes its status, which a create drops.
func createRunningPod(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod) error {
	created, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if created, err = client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	created.Status = pod.Status
	_, err = client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// parallel runs do for 0..n-1 with a few writers at a time and fails b on the first error.
func parallel(b *testing.B, n int, do func(i int) error) {
	b.Helper()
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error { return do(i) })
	}
	require.NoError(b, g.Wait())
}
