package main

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// clusterWideLeases are the Leases of `k3snet controllers`, one per cluster-wide controller.
var clusterWideLeases = []string{"k3snet-cloud-controller", "k3snet-clustercidr", "k3snet-packaged"}

// svclbSelector finds the LB DaemonSets of one Service.
func svclbSelector(svc string) string { return "svccontroller.k3s.cattle.io/svcname=" + svc }

// TestTwoControllersShareOneCluster runs two `k3snet controllers` against one API server, as
// the Deployment's two replicas do: each controller has one leader, a LoadBalancer Service gets
// one DaemonSet and every node a pod CIDR of its own; when the leader is killed (no Lease
// released) the other replica takes over within the lease time and serves new Services and
// nodes, still with one DaemonSet per Service and no CIDR twice.
func TestTwoControllersShareOneCluster(t *testing.T) {
	c := cluster.Get(t)
	ctx := t.Context()
	leaseNS, lbNS, appNS := c.Namespace(t), c.Namespace(t), c.Namespace(t)
	uninitialized := corev1.Taint{Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	addNode := func(ip string) string {
		name := testcluster.UniqueName("ha")
		c.AddNodes(t, testcluster.Node(name, testcluster.Taints(uninitialized),
			testcluster.Annotations(map[string]string{"k3s.io/internal-ip": ip})))
		return name
	}
	nodes := []string{addNode("192.0.2.80"), addNode("192.0.2.81")}

	start := func() *process {
		return startK3snet(t, nil, nil, "controllers", "--kubeconfig="+c.Kubeconfig, "--lease-namespace="+leaseNS,
			"--servicelb-namespace="+lbNS, "--data-dir="+t.TempDir(), "--metrics-bind-address="+freeAddr(t), "--disable=traefik")
	}
	replicas := map[string]*process{"a": start(), "b": start()}
	// holders maps each Lease to the replica holding it; a free Lease is missing.
	holders := func() map[string]string {
		out := map[string]string{}
		for _, name := range clusterWideLeases {
			holder := leaseHolder(t, c, leaseNS, name)
			for replica, p := range replicas {
				if holder != "" && strings.HasSuffix(holder, "_"+p.pid()) {
					out[name] = replica
				}
			}
		}
		return out
	}
	eventually(t, "every cluster-wide controller has a leader", func() bool { return len(holders()) == len(clusterWideLeases) })

	podCIDR := func(node string) string {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return n.Spec.PodCIDR
	}
	for _, node := range nodes {
		eventually(t, node+" gets its addresses, loses the taint and gets a pod CIDR", func() bool {
			n, err := c.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			return err == nil && n.Spec.ProviderID == "k3s://"+node && n.Spec.PodCIDR != "" &&
				!slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == uninitialized.Key })
		})
	}
	assert.NotEqual(t, podCIDR(nodes[0]), podCIDR(nodes[1]), "the two replicas do not hand out one CIDR twice")

	createLB(t, c, appNS, "web", 8080)
	eventually(t, "the Service gets an address", func() bool { return lbIngress(t, c, appNS, "web") != "" })
	assert.Len(t, daemonSets(t, c, lbNS, svclbSelector("web")), 1)
	eventually(t, "CoreDNS is deployed once", func() bool {
		_, err := c.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		return err == nil
	})

	// The replica leading ServiceLB dies without releasing its Leases.
	leader := holders()["k3snet-cloud-controller"]
	other := map[string]string{"a": "b", "b": "a"}[leader]
	replicas[leader].kill(t)
	killed := time.Now()
	assert.Eventually(t, func() bool {
		h := holders()
		return len(h) == len(clusterWideLeases) && !slices.ContainsFunc(slices.Collect(maps.Values(h)), func(r string) bool { return r != other })
	}, compose.LeaseDuration+compose.RenewDeadline+2*compose.RetryPeriod, 200*time.Millisecond,
		"the other replica takes every Lease over once the dead one's expire")
	t.Logf("the surviving replica leads every controller %s after the leader was killed (lease duration %s)",
		time.Since(killed).Round(100*time.Millisecond), compose.LeaseDuration)

	third := addNode("192.0.2.82")
	eventually(t, "a new node gets a pod CIDR from the new leader", func() bool { return podCIDR(third) != "" })
	assert.NotContains(t, []string{podCIDR(nodes[0]), podCIDR(nodes[1])}, podCIDR(third), "no CIDR handed out twice across the takeover")
	createLB(t, c, appNS, "web2", 8081)
	eventually(t, "the new leader serves a new Service", func() bool { return lbIngress(t, c, appNS, "web2") != "" })
	for _, svc := range []string{"web", "web2"} {
		assert.Len(t, daemonSets(t, c, lbNS, svclbSelector(svc)), 1, "one DaemonSet for %s after the takeover", svc)
	}

	replicas[other].stop(t)
	assert.Empty(t, holders(), "a replica that stops releases its Leases")
	_, err := c.Client.AppsV1().DaemonSets(lbNS).Get(ctx, daemonSets(t, c, lbNS, svclbSelector("web"))[0], metav1.GetOptions{})
	assert.NoError(t, err, "a plain stop leaves the DaemonSets serving")
}

// leaseHolder is the identity holding the Lease, "" while it is free or missing.
func leaseHolder(t *testing.T, c *testcluster.Cluster, ns, name string) string {
	lease, err := c.Client.CoordinationV1().Leases(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, time.Minute, 250*time.Millisecond, what)
}

// createLB creates a LoadBalancer Service on port; two Services on one port would conflict
// on every node's hostPort.
func createLB(t *testing.T, c *testcluster.Cluster, ns, name string, port int32) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}}},
	}
	_, err := c.Client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{})
	require.NoError(t, err)
}

// lbIngress is the Service's load-balancer addresses, "" when it has none.
func lbIngress(t *testing.T, c *testcluster.Cluster, ns, name string) string {
	svc, err := c.Client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
		return ""
	}
	return svc.Status.LoadBalancer.Ingress[0].IP
}

func daemonSets(t *testing.T, c *testcluster.Cluster, ns, selector string) []string {
	t.Helper()
	list, err := c.Client.AppsV1().DaemonSets(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	require.NoError(t, err)
	var names []string
	for _, ds := range list.Items {
		names = append(names, ds.Name)
	}
	return names
}
