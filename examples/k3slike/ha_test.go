package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/testcluster"
)

// clusterWideLeases are the Leases compose.RunAsLeader takes, one per cluster-wide controller.
var clusterWideLeases = []string{"k3snet-cloud-controller", "k3snet-clustercidr", "k3snet-packaged"}

// TestTwoServersShareOneCluster runs two k3slike servers against one API server, as the
// servers of an HA K3s cluster do: every cluster-wide controller has one leader, a
// LoadBalancer Service gets one DaemonSet, every node one pod CIDR of its own, and when a
// leader stops the other server takes its controllers over and keeps serving.
func TestTwoServersShareOneCluster(t *testing.T) {
	c, tc := newSharedCluster(t)

	// The agents' kubelets register the nodes, with the taint an external cloud provider lifts.
	uninitialized := corev1.Taint{Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	tc.AddNodes(t, testcluster.Node("ha-a", testcluster.Taints(uninitialized)), testcluster.Node("ha-b", testcluster.Taints(uninitialized)))
	start := func(node, ip string) *server {
		return startServer(t, c.exe, []string{"--kubeconfig=" + tc.Kubeconfig, "--data-dir=" + t.TempDir(),
			"--node-name=" + node, "--node-ip=" + ip, "--bin-dir=" + c.binDir,
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(freePort(t)), "--disable-network-policy"})
	}
	servers := map[string]*server{"a": start("ha-a", "192.0.2.80"), "b": start("ha-b", "192.0.2.81")}
	identityOf := map[string]string{}
	for name, s := range servers {
		identityOf[name] = "_" + strconv.Itoa(s.cmd.Process.Pid)
	}
	// holders maps each Lease to the server holding it, "" while it is free.
	holders := func() map[string]string {
		out := map[string]string{}
		for _, lease := range clusterWideLeases {
			holder := c.value("{.spec.holderIdentity}", "-n", "kube-system", "lease", lease)
			for name, suffix := range identityOf {
				if holder != "" && strings.HasSuffix(holder, suffix) {
					out[lease] = name
				}
			}
		}
		return out
	}
	c.eventually("every cluster-wide controller has a leader", func() bool { return len(holders()) == len(clusterWideLeases) })

	for _, node := range []string{"ha-a", "ha-b"} {
		c.eventually(node+" gets its addresses, loses the taint and gets a pod CIDR", func() bool {
			return c.value("{.spec.providerID}", "node", node) == "k3s://"+node &&
				!strings.Contains(c.value("{.spec.taints}", "node", node), "uninitialized") &&
				c.value("{.spec.podCIDR}", "node", node) != ""
		})
	}
	assert.NotEqual(t, c.value("{.spec.podCIDR}", "node", "ha-a"), c.value("{.spec.podCIDR}", "node", "ha-b"),
		"the two servers' allocators do not hand out one CIDR twice")
	c.kubectl("create", "service", "loadbalancer", "web", "--tcp=8080:80")
	c.eventually("the Service gets both nodes' IPs", func() bool {
		return c.value("{.status.loadBalancer.ingress[*].ip}", "service", "web") == "192.0.2.80 192.0.2.81"
	})
	assert.Len(t, c.names("-n", "kube-system", "daemonsets", "-l", "svccontroller.k3s.cattle.io/svcname=web"), 1)
	c.eventually("CoreDNS is deployed once", func() bool { return len(c.names("-n", "kube-system", "deployment/coredns")) == 1 })

	// The server leading ServiceLB stops; it releases its Leases, so the other takes over at
	// once rather than after the lease duration.
	leader := holders()["k3snet-cloud-controller"]
	other := map[string]string{"a": "b", "b": "a"}[leader]
	servers[leader].stop(t)
	assert.NotContains(t, slices.Collect(maps.Values(holders())), leader, "a server releases its Leases before it exits")
	c.eventually("the remaining server leads every cluster-wide controller", func() bool {
		h := holders()
		return len(h) == len(clusterWideLeases) && !slices.ContainsFunc(clusterWideLeases, func(l string) bool { return h[l] != other })
	})
	c.kubectl("create", "service", "loadbalancer", "web2", "--tcp=8081:80")
	c.eventually("the new leader serves a new Service", func() bool {
		return c.value("{.status.loadBalancer.ingress[*].ip}", "service", "web2") == "192.0.2.80 192.0.2.81"
	})
	for _, svc := range []string{"web", "web2"} {
		assert.Len(t, c.names("-n", "kube-system", "daemonsets", "-l", "svccontroller.k3s.cattle.io/svcname="+svc), 1,
			"one DaemonSet for %s after the takeover", svc)
	}
	servers[other].stop(t)
}

// TestTwoServersApplyTheirOwnManifests runs two k3slike servers against one API server and
// gives each a manifests directory of its own, as K3s servers have: the deploy controller
// runs on every server, not under a Lease, so a file only server B has is applied while A
// leads every Lease; the same file on both converges and then stays put (neither server
// rewrites what the other applied); and removing a file deletes nothing, as in K3s, so B's
// objects outlive its file and A, which never had it, does not prune them.
func TestTwoServersApplyTheirOwnManifests(t *testing.T) {
	c, tc := newSharedCluster(t)
	tc.AddNodes(t, testcluster.Node("own-a"), testcluster.Node("own-b"))

	dataDirs := map[string]string{"a": t.TempDir(), "b": t.TempDir()}
	start := func(name, node, ip string) *server {
		return startServer(t, c.exe, []string{"--kubeconfig=" + tc.Kubeconfig, "--data-dir=" + dataDirs[name],
			"--node-name=" + node, "--node-ip=" + ip, "--bin-dir=" + c.binDir, "--disable=traefik,servicelb",
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(freePort(t)), "--disable-network-policy"})
	}
	// A starts alone, so it leads every Lease before B is there to compete.
	a := start("a", "own-a", "192.0.2.90")
	ledByA := func() bool {
		for _, lease := range clusterWideLeases {
			if !strings.HasSuffix(c.value("{.spec.holderIdentity}", "-n", "kube-system", "lease", lease), "_"+strconv.Itoa(a.cmd.Process.Pid)) {
				return false
			}
		}
		return true
	}
	c.eventually("A leads every cluster-wide controller", ledByA)
	b := start("b", "own-b", "192.0.2.91")

	manifest := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: default\ndata:\n  from: manifests\n"
	}
	write := func(server, file, content string) {
		path := filepath.Join(dataDirs[server], "server", "manifests", file)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	}
	write("b", "only-b.yaml", manifest("only-b"))
	c.eventually("B applies the file only it has", func() bool {
		return c.value("{.data.from}", "configmap", "only-b") == "manifests"
	})
	assert.Equal(t, filepath.Join(dataDirs["b"], "server", "manifests", "only-b.yaml"),
		c.value("{.spec.source}", "-n", "kube-system", "addons.k3s.cattle.io", "only-b"))
	require.True(t, ledByA(), "A still leads every Lease: B applied the file without one")

	write("a", "shared.yaml", manifest("shared"))
	write("b", "shared.yaml", manifest("shared"))
	c.eventually("the file both servers have is applied", func() bool {
		return c.value("{.data.from}", "configmap", "shared") == "manifests" &&
			c.value("{.spec.checksum}", "-n", "kube-system", "addons.k3s.cattle.io", "shared") != ""
	})

	// Nothing either server writes may change after convergence: a pass of each server's
	// loop (every 15 s) falls inside the window.
	watched := [][]string{
		{"configmap", "shared"}, {"configmap", "only-b"},
		{"-n", "kube-system", "addons.k3s.cattle.io", "shared"}, {"-n", "kube-system", "addons.k3s.cattle.io", "only-b"},
	}
	versions := func() []string {
		var out []string
		for _, obj := range watched {
			out = append(out, strings.Join(obj, "/")+"@"+c.value("{.metadata.resourceVersion}", obj...))
		}
		events := c.value("{.items[*].metadata.name}", "-n", "kube-system", "events", "--field-selector=involvedObject.kind=Addon")
		return append(out, "events:"+strconv.Itoa(len(strings.Fields(events))))
	}
	time.Sleep(3 * time.Second) // a second apply racing the first has landed by now
	converged := versions()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		require.Equal(t, converged, versions(), "the two servers keep rewriting what they applied")
	}

	// K3s deletes nothing when a file leaves the directory; B's objects stay, and A's
	// passes leave alone an Addon whose file it never had.
	require.NoError(t, os.Remove(filepath.Join(dataDirs["b"], "server", "manifests", "only-b.yaml")))
	require.NoError(t, os.Remove(filepath.Join(dataDirs["a"], "server", "manifests", "shared.yaml")))
	time.Sleep(3 * time.Second)
	assert.Equal(t, converged, versions(), "removing a file changes nothing in the cluster")

	b.stop(t)
	a.stop(t)
}

// newSharedCluster starts an API server (with kwok) that several k3slike servers, run with
// --kubeconfig, share as the servers of an HA cluster do.
func newSharedCluster(t *testing.T) (*cluster, *testcluster.Cluster) {
	binDir := requireBinaries(t)
	exe := buildK3slike(t)
	tc, err := testcluster.Start(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tc.Stop()) })
	return &cluster{t: t, exe: exe, binDir: binDir, kubeconfig: tc.Kubeconfig}, tc
}
