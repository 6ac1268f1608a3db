package netpol

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/testcluster"

	"github.com/k3snet/k3snet/netpol/reference"
)

// sharedCluster is the real control plane of this package's integration tests, started on
// first use.
var sharedCluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(sharedCluster.Run(m)) }

// integrationUser is the identity the controller's client impersonates: bound to ClusterRole
// only, so the test also proves the role is enough.
const integrationUser = "k3snet-netpol-test"

// liveWithin bounds how long a change may take to reach the packets before the test fails;
// the measured times are logged.
const liveWithin = 30 * time.Second

// apiNode is the test node of dataplane_test.go registered in a real control plane: its pods
// are API objects in namespaces <prefix>-x, -y, -z (labelled ns=x, ...), bound to the
// Unmanaged node <prefix>-1 (pod CIDRs 10.42.0.0/24, fd42::/64; z/a on <prefix>-2), with
// the addresses of their network namespaces patched into their status.
type apiNode struct {
	*testNode
	admin  kubernetes.Interface
	prefix string
	// node1 is the node the controller programs; node2 runs the remote pod.
	node1, node2 string
}

// ns maps a fixture namespace (x, y, z) to its API name.
func (an *apiNode) ns(short string) string { return an.prefix + "-" + short }

// createPod creates host i's pod through the API, bound to its node, then reports it
// Running with its addresses through the status subresource, as a kubelet would. It returns
// when the status patch returned.
func (an *apiNode) createPod(t *testing.T, i int) {
	t.Helper()
	ctx := t.Context()
	want := an.hosts[i].pod
	pod := want.DeepCopy()
	pod.Namespace = an.ns(want.Namespace)
	pod.Spec.NodeName = an.node1
	if want.Spec.NodeName != nodeName {
		pod.Spec.NodeName = an.node2
	}
	for j := range pod.Spec.Containers {
		pod.Spec.Containers[j].Image = "example.invalid/agnhost:1"
	}
	pod.Status = corev1.PodStatus{}
	created, err := an.admin.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	created.Status = want.Status
	created.Status.HostIP = "192.0.2.1"
	created.Status.HostIPs = []corev1.HostIP{{IP: "192.0.2.1"}}
	running, err := an.admin.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	require.NoError(t, err)
	an.hosts[i].pod = running
}

// cluster reads the namespaces and policies of the test back from the API, for the evaluator.
func (an *apiNode) cluster(t *testing.T) reference.Cluster {
	t.Helper()
	var cl reference.Cluster
	for _, short := range []string{"x", "y", "z"} {
		ns, err := an.admin.CoreV1().Namespaces().Get(t.Context(), an.ns(short), metav1.GetOptions{})
		require.NoError(t, err)
		cl.Namespaces = append(cl.Namespaces, ns)
		list, err := an.admin.NetworkingV1().NetworkPolicies(ns.Name).List(t.Context(), metav1.ListOptions{})
		require.NoError(t, err)
		for i := range list.Items {
			cl.Policies = append(cl.Policies, &list.Items[i])
		}
	}
	return cl
}

// waitMatrix probes the hosts given until the observed matrix of each probe equals the
// evaluator's on cl, failing after liveWithin.
func (an *apiNode) waitMatrix(t *testing.T, hosts []int, cl reference.Cluster, probes ...reference.Probe) {
	t.Helper()
	sub := *an.testNode
	sub.hosts = nil
	for _, i := range hosts {
		sub.hosts = append(sub.hosts, an.hosts[i])
	}
	for _, probe := range probes {
		eps := make([]reference.Endpoint, len(sub.hosts))
		for i, h := range sub.hosts {
			eps[i] = h.endpoint(probe.Family)
		}
		want, err := reference.Reachability(cl, eps, probe)
		require.NoError(t, err)
		deadline := time.Now().Add(liveWithin)
		for {
			got := sub.observe(t, probe)
			diff := want.Diff(got)
			if len(diff) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("probe %s: after %s the dataplane still disagrees with the evaluator:\n%s\nwant:\n%sgot:\n%s", probe, liveWithin, strings.Join(diff, "\n"), want, got)
			}
			time.Sleep(50 * time.Millisecond) // between polls, not an assertion
		}
	}
}

// waitCell probes TCP port 80 of to's IPv4 address from host from until the outcome is
// allowed, failing after liveWithin, and returns the time since since.
func (an *apiNode) waitCell(t *testing.T, from, to int, allowed bool, since time.Time) time.Duration {
	t.Helper()
	dst := netip.AddrPortFrom(an.hosts[to].v4, 80)
	for {
		err := an.hosts[from].ns.Probe(netns.TCP, dst, time.Second)
		if err != nil && !netns.IsBlocked(err) {
			t.Fatalf("probe to %s: %v", dst, err)
		}
		if (err == nil) == allowed {
			return time.Since(since)
		}
		if time.Since(since) > liveWithin {
			t.Fatalf("probe to %s still allowed=%t after %s", dst, !allowed, liveWithin)
		}
		time.Sleep(5 * time.Millisecond) // between polls, not an assertion
	}
}

// newAPINode builds the test node and registers it in the control plane: its two Nodes and
// the namespaces x, y, z (with their default ServiceAccounts, which pod admission needs).
func newAPINode(t *testing.T, c *testcluster.Cluster) *apiNode {
	t.Helper()
	ctx := t.Context()
	an := &apiNode{testNode: newTestNode(t), admin: c.Client, prefix: testcluster.UniqueName("np")}
	an.node1, an.node2 = an.prefix+"-1", an.prefix+"-2"
	c.AddNodes(t,
		testcluster.Node(an.node1, testcluster.Unmanaged(), testcluster.PodCIDRs("10.42.0.0/24", "fd42::/64")),
		testcluster.Node(an.node2, testcluster.Unmanaged(), testcluster.PodCIDRs("10.42.1.0/24", "fd42:1::/64")))
	for _, short := range []string{"x", "y", "z"} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: an.ns(short), Labels: map[string]string{"ns": short}}}
		_, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() {
			_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		})
		require.NoError(t, c.Poll(ctx, func(ctx context.Context) (bool, error) {
			_, err := c.Client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		}))
	}
	return an
}

// controllerClient returns a client that impersonates integrationUser, bound to ClusterRole
// only, once the authorizer knows the binding.
func (an *apiNode) controllerClient(t *testing.T, c *testcluster.Cluster) kubernetes.Interface {
	t.Helper()
	ctx := t.Context()
	bindTestRole(t, c.Client)
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: integrationUser}
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Poll(ctx, func(ctx context.Context) (bool, error) {
		// The authorizer learns of the new binding through its own informers.
		_, err := client.NetworkingV1().NetworkPolicies("default").List(ctx, metav1.ListOptions{})
		return err == nil, nil
	}))
	return client
}

// startController starts a controller for node1 with a fresh informer factory and a fresh
// Dataplane (no cache: what a restarted process has), logging to the test, and returns the
// function that stops it. reg, if not nil, gets its metrics.
func (an *apiNode) startController(t *testing.T, client kubernetes.Interface, reg metrics.KubeRegistry) context.CancelFunc {
	t.Helper()
	ctrl, err := newController(client, Options{NodeName: an.node1, MetricsRegistry: reg}, NewDataplane(nsRunner(an.node)))
	require.NoError(t, err)
	// The controller logs to the test, its V(2) sync timings included.
	_, logCtx := ktesting.NewTestContext(t)
	ctx, stop := context.WithCancel(logCtx)
	t.Cleanup(stop)
	require.NoError(t, ctrl.Start(ctx, informers.NewSharedInformerFactory(client, 0)))
	return stop
}

// bindTestRole creates ClusterRole and binds integrationUser to it.
func bindTestRole(t *testing.T, admin kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	_, err := admin.RbacV1().ClusterRoles().Create(ctx, ClusterRole(), metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ClusterRoleName},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: integrationUser}},
	}
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// TestControllerEnforcesAPIPolicies runs the controller against the real control plane,
// programming a node network namespace whose pods are real network namespaces, and checks
// with real TCP connections that what the API says is what the packets get, per the
// reference evaluator: before any policy, after a policy is created, updated, when a pod
// starts later, and after the policy is deleted. It logs the time from each API change to
// the first packet that sees it.
func TestControllerEnforcesAPIPolicies(t *testing.T) {
	netns.Require(t)
	c := sharedCluster.Get(t)
	ctx := t.Context()
	an := newAPINode(t, c)
	// Hosts: 0 x/a, 1 x/b, 2 y/a, 3 y/b, 4 z/a (remote), 5 the external client. x/b starts
	// later, so it is left out of the matrices until then.
	const xa, xb, ya, ext = 0, 1, 2, 5
	running := []int{0, 2, 3, 4, 5}
	all := []int{0, 1, 2, 3, 4, 5}
	for _, i := range []int{0, 2, 3, 4} {
		an.createPod(t, i)
	}
	client := an.controllerClient(t, c)
	start := time.Now()
	an.startController(t, client, nil)

	tcp80 := reference.Probe{Port: 80, Family: corev1.IPv4Protocol}
	tcp80v6 := reference.Probe{Port: 80, Family: corev1.IPv6Protocol}
	t.Run("without a policy every pod is open, and a local address without a pod is not", func(t *testing.T) {
		t.Logf("first sync live %s after Start was called", an.waitCell(t, ext, xb, false, start))
		an.waitMatrix(t, running, an.cluster(t), tcp80, tcp80v6)
	})

	policy := makePolicy(an.ns("x"), "deny-ingress", ingressRules())
	t.Run("a policy created through the API isolates its namespace", func(t *testing.T) {
		t0 := time.Now()
		var err error
		policy, err = c.Client.NetworkingV1().NetworkPolicies(policy.Namespace).Create(ctx, policy, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Logf("policy create → ext→x/a blocked: %s", an.waitCell(t, ext, xa, false, t0))
		an.waitMatrix(t, running, an.cluster(t), tcp80, tcp80v6)
	})

	t.Run("an updated policy admits the namespace it now names", func(t *testing.T) {
		policy = policy.DeepCopy()
		policy.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{from(peers(nsPeer(labelsSel("ns", "y"))))}
		t0 := time.Now()
		var err error
		policy, err = c.Client.NetworkingV1().NetworkPolicies(policy.Namespace).Update(ctx, policy, metav1.UpdateOptions{})
		require.NoError(t, err)
		t.Logf("policy update → y/a→x/a allowed: %s", an.waitCell(t, ya, xa, true, t0))
		an.waitMatrix(t, running, an.cluster(t), tcp80, tcp80v6)
	})

	t.Run("a pod started later gets its rules, and the policy's", func(t *testing.T) {
		require.True(t, netns.IsBlocked(an.hosts[xb].ns.Probe(netns.TCP, netip.AddrPortFrom(an.hosts[ext].v4, 80), time.Second)),
			"an unprogrammed local pod sends nothing")
		an.createPod(t, xb)
		t0 := time.Now()
		t.Logf("pod status patch → x/b→ext allowed: %s", an.waitCell(t, xb, ext, true, t0))
		an.waitMatrix(t, all, an.cluster(t), tcp80, tcp80v6)
	})

	t.Run("a deleted policy stops being enforced", func(t *testing.T) {
		t0 := time.Now()
		require.NoError(t, c.Client.NetworkingV1().NetworkPolicies(policy.Namespace).Delete(ctx, policy.Name, metav1.DeleteOptions{}))
		t.Logf("policy delete → ext→x/a allowed: %s", an.waitCell(t, ext, xa, true, t0))
		an.waitMatrix(t, all, an.cluster(t), tcp80, tcp80v6)
	})
}

// TestControllerRestartOpensNoWindow stops the controller while a deny policy is enforced
// and starts a new one (new informers, a Dataplane without cache, as after a process
// restart), while a goroutine probes the denied cells without pause: no probe may get
// through at any moment of the restart, and the kernel holds exactly the same rules and sets
// afterwards, none duplicated (kube-router#1676 duplicated rules at every sync).
func TestControllerRestartOpensNoWindow(t *testing.T) {
	netns.Require(t)
	c := sharedCluster.Get(t)
	ctx := t.Context()
	an := newAPINode(t, c)
	const xa, xb, ya, ext = 0, 1, 2, 5
	for _, i := range []int{0, 1, 2, 3, 4} {
		an.createPod(t, i)
	}
	deny := makePolicy(an.ns("x"), "deny-ingress", ingressRules())
	_, err := c.Client.NetworkingV1().NetworkPolicies(deny.Namespace).Create(ctx, deny, metav1.CreateOptions{})
	require.NoError(t, err)
	client := an.controllerClient(t, c)
	first := metrics.NewKubeRegistry()
	stop := an.startController(t, client, first)
	an.waitCell(t, ext, xa, false, time.Now())
	an.waitCell(t, ya, xb, false, time.Now())
	an.waitCell(t, xa, ext, true, time.Now()) // the policy isolates ingress only
	// The IPv4 cells answer once iptables is written; the sync ends after ip6tables.
	require.Eventually(t, func() bool { return gatherMetric(t, first, "netpol_syncs_total", "result", syncApplied) >= 1 },
		liveWithin, 10*time.Millisecond, "the first controller never finished a sync")
	before := ownObjects(an.kernelDump(t))

	// Probe ext → x/a and y/a → x/b in a loop until told to stop. IPv4: a refused IPv6
	// connect is reported only after the first SYN retransmission (1 s), too coarse here.
	type cell struct {
		from, to int
		addr     netip.Addr
	}
	cells := []cell{{ext, xa, an.hosts[xa].v4}, {ya, xb, an.hosts[xb].v4}}
	var probes, leaks atomic.Int64
	var probeErrs []error // read after finished
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			cl := cells[i%len(cells)]
			err := an.hosts[cl.from].ns.Probe(netns.TCP, netip.AddrPortFrom(cl.addr, 80), time.Second)
			probes.Add(1)
			switch {
			case err == nil:
				leaks.Add(1)
			case !netns.IsBlocked(err):
				probeErrs = append(probeErrs, err)
			}
		}
	}()

	for probes.Load() < 10 {
		time.Sleep(10 * time.Millisecond) // waiting for the prober, not an assertion
	}
	stop()
	reg := metrics.NewKubeRegistry()
	restarted := time.Now()
	an.startController(t, client, reg)
	require.Eventually(t, func() bool { return gatherMetric(t, reg, "netpol_syncs_total", "result", syncApplied) >= 1 },
		liveWithin, 10*time.Millisecond, "the restarted controller never applied its first sync")
	t.Logf("restart → first sync of the new controller applied: %s", time.Since(restarted))
	// Keep probing a little after the new rules are in, then stop the prober.
	for n := probes.Load(); probes.Load() < n+100; {
		time.Sleep(10 * time.Millisecond) // waiting for the prober, not an assertion
	}
	close(done)
	<-finished

	require.NoError(t, errors.Join(probeErrs...))
	t.Logf("%d probes of denied cells around the restart", probes.Load())
	require.Zero(t, leaks.Load(), "probes of a denied cell that got through during the restart")
	after := ownObjects(an.kernelDump(t))
	require.Equal(t, before, after, "the restarted controller must leave exactly the same rules and sets")
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := an.node.Exec(ctx, save, "-t", "filter")
		require.NoError(t, err)
		require.Empty(t, duplicateRules(ownObjects(out)), "%s: rules of ours present twice", save)
	}
}

// duplicateRules returns the "-A" lines that occur more than once among lines.
func duplicateRules(lines []string) []string {
	seen := map[string]int{}
	var dups []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			if seen[l]++; seen[l] == 2 {
				dups = append(dups, l)
			}
		}
	}
	return dups
}
