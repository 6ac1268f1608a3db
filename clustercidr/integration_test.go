package clustercidr

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/leader"
)

// Every test of the package shares one control plane. Each test labels its nodes with its own
// testLabel value and runs its controllers on a factory that only sees those nodes; tests run
// one after another and remove their ClusterCIDRs (and default-cluster-cidr) at the end, so
// a controller in MultiClusterCIDR mode only meets its own test's objects.
var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }

// testLabel carries the per-test id on every node a test creates.
const testLabel = "k3snet.test/clustercidr"

// env is one test's view of the shared cluster.
type env struct {
	t   testing.TB
	c   *testcluster.Cluster
	dyn dynamic.Interface
	id  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := cluster.Get(t)
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	// Tests create ClusterCIDRs before any controller installs the CRD; applying it is
	// idempotent, so each test does it rather than depend on the order tests run in.
	require.NoError(t, installCRD(t.Context(), dyn))
	return &env{t: t, c: c, dyn: dyn, id: testcluster.UniqueName("t")}
}

// start runs a controller on a factory that sees only this test's nodes, until the test ends
// or the returned stop is called.
func (e *env) start(opts Options) (stop func()) {
	return e.startWith(e.c.Client, opts)
}

func (e *env) startWith(client kubernetes.Interface, opts Options) (stop func()) {
	e.t.Helper()
	if opts.MultiClusterCIDR {
		opts.Dynamic = e.dyn
		// Registered before the controller's own stop, so it runs after it (LIFO).
		e.t.Cleanup(func() { e.deleteClusterCIDR(DefaultClusterCIDRName) })
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = testLabel + "=" + e.id }))
	ctrl, err := New(client, opts)
	require.NoError(e.t, err)
	require.NoError(e.t, ctrl.Start(ctx, factory))
	return cancel
}

// clusterCIDR creates a ClusterCIDR from YAML-ish parts and deletes it when the test ends.
func (e *env) clusterCIDR(name string, spec ClusterCIDRSpec) {
	e.t.Helper()
	obj, err := clusterCIDRObject(name, spec)
	require.NoError(e.t, err)
	e.createClusterCIDR(obj)
}

func (e *env) createClusterCIDR(obj *unstructured.Unstructured) {
	e.t.Helper()
	_, err := e.dyn.Resource(clusterCIDRGVR).Create(context.Background(), obj, metav1.CreateOptions{})
	require.NoError(e.t, err)
	name := obj.GetName()
	e.t.Cleanup(func() { e.deleteClusterCIDR(name) })
}

func clusterCIDRObject(name string, spec ClusterCIDRSpec) (*unstructured.Unstructured, error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&spec)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"spec": raw}}
	obj.SetAPIVersion(Group + "/" + Version)
	obj.SetKind(Kind)
	obj.SetName(name)
	return obj, nil
}

// deleteClusterCIDR deletes the object, strips the finalizer (the controller is stopped by
// then) and waits until it is gone, so the next test starts clean.
func (e *env) deleteClusterCIDR(name string) {
	ctx := context.Background()
	res := e.dyn.Resource(clusterCIDRGVR)
	err := res.Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		e.t.Errorf("deleting ClusterCIDR %s: %v", name, err)
		return
	}
	_, err = res.Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		e.t.Errorf("removing finalizers of ClusterCIDR %s: %v", name, err)
	}
	err = e.c.Poll(ctx, func(ctx context.Context) (bool, error) {
		_, err := res.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		e.t.Errorf("ClusterCIDR %s still there: %v", name, err)
	}
}

// nodes creates count nodes named prefix-i with this test's label plus labels(i), kwok-managed
// or not, concurrently, and deletes them when the test ends.
func (e *env) nodes(prefix string, count int, kwok bool, labels func(i int) map[string]string, opts ...testcluster.NodeOption) []string {
	e.t.Helper()
	names := make([]string, count)
	built := make([]*corev1.Node, count)
	for i := range count {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		l := map[string]string{testLabel: e.id}
		if labels != nil {
			for k, v := range labels(i) {
				l[k] = v
			}
		}
		o := append([]testcluster.NodeOption{testcluster.Labels(l)}, opts...)
		if !kwok {
			o = append(o, testcluster.Unmanaged())
		}
		built[i] = testcluster.Node(names[i], o...)
	}
	if kwok {
		e.c.AddNodes(e.t, built...)
		return names
	}
	e.parallel(count, func(i int) error {
		_, err := e.c.Client.CoreV1().Nodes().Create(context.Background(), built[i], metav1.CreateOptions{})
		return err
	})
	e.t.Cleanup(func() { e.deleteNodes(names...) })
	return names
}

func (e *env) deleteNodes(names ...string) {
	e.parallel(len(names), func(i int) error {
		err := e.c.Client.CoreV1().Nodes().Delete(context.Background(), names[i], metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// parallel runs f for 0..n-1 on 16 goroutines and fails the test on any error.
func (e *env) parallel(n int, f func(i int) error) {
	e.t.Helper()
	e.parallelOn(16, n, f)
}

// parallelOn runs f for 0..n-1 on the given number of goroutines and fails the test on any error.
func (e *env) parallelOn(goroutines, n int, f func(i int) error) {
	e.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range goroutines {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Error(err)
	}
}

// waitCIDRs waits until every named node has spec.podCIDRs and returns them.
func (e *env) waitCIDRs(names ...string) map[string][]string {
	e.t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var got map[string][]string
	err := e.c.Poll(context.Background(), func(ctx context.Context) (bool, error) {
		list, err := e.c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: testLabel + "=" + e.id})
		if err != nil {
			return false, err
		}
		got = map[string][]string{}
		for _, n := range list.Items {
			if want[n.Name] && len(n.Spec.PodCIDRs) > 0 {
				got[n.Name] = n.Spec.PodCIDRs
			}
		}
		return len(got) == len(want), nil
	})
	require.NoError(e.t, err, "%d of %d nodes have pod CIDRs", len(got), len(want))
	return got
}

// assertNoOverlap fails if two nodes' pod CIDRs overlap.
func assertNoOverlap(t *testing.T, got map[string][]string) {
	t.Helper()
	type owned struct {
		node string
		p    netip.Prefix
	}
	var all []owned
	for n, cidrs := range got {
		for _, s := range cidrs {
			p, err := netip.ParsePrefix(s)
			require.NoError(t, err)
			for _, o := range all {
				assert.False(t, o.p.Overlaps(p), "nodes %s (%s) and %s (%s) overlap", o.node, o.p, n, p)
			}
			all = append(all, owned{n, p})
		}
	}
}

// assertIn checks that the node's only pod CIDR is a /bits inside want.
func assertIn(t *testing.T, node string, cidrs []string, want string, bits int) {
	t.Helper()
	require.Len(t, cidrs, 1, node)
	p := netip.MustParsePrefix(cidrs[0])
	assert.True(t, netip.MustParsePrefix(want).Contains(p.Addr()), "node %s got %s, want inside %s", node, p, want)
	assert.Equal(t, bits, p.Bits(), "node %s got %s", node, p)
}

// waitEvent waits for an Event with reason on the object name in ns and returns its message.
func (e *env) waitEvent(ns, name, reason string) string {
	e.t.Helper()
	var msg string
	err := e.c.Poll(context.Background(), func(ctx context.Context) (bool, error) {
		list, err := e.c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": name, "reason": reason}.String()})
		if err != nil || len(list.Items) == 0 {
			return false, err
		}
		msg = list.Items[0].Message
		return true, nil
	})
	require.NoError(e.t, err, "no %s Event on %s", reason, name)
	return msg
}

func oneTerm(exprs ...corev1.NodeSelectorRequirement) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: exprs}}}
}

func TestSelectedNodesGetCIDRsFromTheirClusterCIDR(t *testing.T) {
	e := newEnv(t)
	a, b := "a-"+e.id, "b-"+e.id
	e.clusterCIDR("a-"+e.id, ClusterCIDRSpec{NodeSelector: oneTerm(in("tier", a)), PerNodeHostBits: 8, IPv4: "10.61.0.0/16"})
	e.clusterCIDR("b-"+e.id, ClusterCIDRSpec{NodeSelector: oneTerm(in("tier", b)), PerNodeHostBits: 6, IPv4: "10.62.0.0/16"})
	// Two requirements beat one (priority P0: more matching requirements first) until its 4 blocks run out.
	e.clusterCIDR("az-"+e.id, ClusterCIDRSpec{NodeSelector: oneTerm(in("tier", a), in("zone", "z1-"+e.id)), PerNodeHostBits: 8, IPv4: "10.63.0.0/22"})

	names := e.nodes("sel-"+e.id, 50, true, func(i int) map[string]string {
		switch i % 3 {
		case 0:
			if i%2 == 0 {
				return map[string]string{"tier": a, "zone": "z1-" + e.id}
			}
			return map[string]string{"tier": a}
		case 1:
			return map[string]string{"tier": b}
		}
		return nil
	})
	e.start(Options{ClusterCIDRs: pfxs("10.60.0.0/16"), MultiClusterCIDR: true})
	got := e.waitCIDRs(names...)

	inAZ := 0
	for i, n := range names {
		switch {
		case i%3 == 0 && i%2 == 0:
			p := netip.MustParsePrefix(got[n][0])
			if netip.MustParsePrefix("10.63.0.0/22").Contains(p.Addr()) {
				inAZ++
				assertIn(t, n, got[n], "10.63.0.0/22", 24)
			} else {
				assertIn(t, n, got[n], "10.61.0.0/16", 24)
			}
		case i%3 == 0:
			assertIn(t, n, got[n], "10.61.0.0/16", 24)
		case i%3 == 1:
			assertIn(t, n, got[n], "10.62.0.0/16", 26)
		default:
			assertIn(t, n, got[n], "10.60.0.0/16", 24)
		}
	}
	assert.Equal(t, 4, inAZ, "the two-requirement ClusterCIDR holds 4 nodes, the rest fall through")
	assertNoOverlap(t, got)

	// The default exists, guarded by the finalizer like every ClusterCIDR.
	def, err := e.dyn.Resource(clusterCIDRGVR).Get(t.Context(), DefaultClusterCIDRName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, def.GetFinalizers(), Finalizer)
	spec, err := specFromObject(def)
	require.NoError(t, err)
	assert.Equal(t, ClusterCIDRSpec{PerNodeHostBits: 8, IPv4: "10.60.0.0/16"}, spec)
}

// k3sDocsClusterCIDR is the K3s documentation's example ClusterCIDR (worker2 by hostname),
// verbatim but for the apiVersion.
const k3sDocsClusterCIDR = `apiVersion: networking.x-k8s.io/v1
kind: ClusterCIDR
metadata:
  name: worker2-cidr
spec:
  nodeSelector:
    nodeSelectorTerms:
    - matchExpressions:
      - key: kubernetes.io/hostname
        operator: In
        values:
        - worker2
  perNodeHostBits: 8
  ipv4: 10.247.0.0/16
`

func TestK3sDocsClusterCIDRThroughKubectl(t *testing.T) {
	e := newEnv(t)
	e.start(Options{ClusterCIDRs: pfxs("10.64.0.0/16"), MultiClusterCIDR: true})
	kubectl := func(stdin string, args ...string) string {
		cmd := exec.Command(e.c.BinDir+"/kubectl", append([]string{"--kubeconfig", e.c.Kubeconfig}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	kubectl(k3sDocsClusterCIDR, "apply", "-f", "-")
	t.Cleanup(func() { e.deleteClusterCIDR("worker2-cidr") })
	out := kubectl("", "get", "cc", "worker2-cidr")
	assert.Regexp(t, `worker2-cidr\s+8\s+10\.247\.0\.0/16`, out, "kubectl shows the printer columns")

	// Node names are the hostname label; both are unique to the package's cluster.
	for _, name := range []string{"worker1", "worker2"} {
		e.c.AddNodes(t, testcluster.Node(name, testcluster.Labels(map[string]string{testLabel: e.id})))
	}
	got := e.waitCIDRs("worker1", "worker2")
	assertIn(t, "worker2", got["worker2"], "10.247.0.0/16", 24)
	assertIn(t, "worker1", got["worker1"], "10.64.0.0/16", 24)
}

func TestInvalidClusterCIDRsAreRejectedByTheAPI(t *testing.T) {
	e := newEnv(t)
	bad := map[string]ClusterCIDRSpec{
		"no-cidr":       {PerNodeHostBits: 8},
		"wrong-family":  {PerNodeHostBits: 8, IPv4: "fd00::/64"},
		"host-bits-set": {PerNodeHostBits: 8, IPv4: "10.0.0.1/16"},
		"too-few-bits":  {PerNodeHostBits: 3, IPv4: "10.0.0.0/16"},
		"too-many-bits": {PerNodeHostBits: 5, IPv4: "10.0.0.0/28"},
		"empty-term":    {NodeSelector: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}}, PerNodeHostBits: 8, IPv4: "10.1.0.0/16"},
	}
	for name, spec := range bad {
		obj, err := clusterCIDRObject(name+"-"+e.id, spec)
		require.NoError(t, err)
		_, err = e.dyn.Resource(clusterCIDRGVR).Create(t.Context(), obj, metav1.CreateOptions{})
		assert.True(t, apierrors.IsInvalid(err), "%s: want Invalid, got %v", name, err)
	}

	// The spec is immutable.
	name := "immutable-" + e.id
	e.clusterCIDR(name, ClusterCIDRSpec{PerNodeHostBits: 8, IPv4: "10.65.0.0/16"})
	_, err := e.dyn.Resource(clusterCIDRGVR).Patch(t.Context(), name, types.MergePatchType, []byte(`{"spec":{"ipv4":"10.66.0.0/16"}}`), metav1.PatchOptions{})
	assert.True(t, apierrors.IsInvalid(err), "changing ipv4: want Invalid, got %v", err)
}

func TestDeletedClusterCIDRIsHeldWhileANodeUsesIt(t *testing.T) {
	e := newEnv(t)
	name := "held-" + e.id
	e.clusterCIDR(name, ClusterCIDRSpec{NodeSelector: oneTerm(in("pool", e.id)), PerNodeHostBits: 8, IPv4: "10.67.0.0/16"})
	nodes := e.nodes("held-"+e.id, 2, false, func(int) map[string]string { return map[string]string{"pool": e.id} })
	e.start(Options{ClusterCIDRs: pfxs("10.68.0.0/16"), MultiClusterCIDR: true})
	got := e.waitCIDRs(nodes...)
	for _, n := range nodes {
		assertIn(t, n, got[n], "10.67.0.0/16", 24)
	}
	res := e.dyn.Resource(clusterCIDRGVR)
	require.NoError(t, res.Delete(t.Context(), name, metav1.DeleteOptions{}))

	msg := e.waitEvent(metav1.NamespaceDefault, name, ReasonClusterCIDRInUse)
	for _, n := range nodes {
		assert.Contains(t, msg, n)
	}
	obj, err := res.Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err, "the finalizer holds the ClusterCIDR")
	assert.NotNil(t, obj.GetDeletionTimestamp())

	// A terminating ClusterCIDR hands out nothing: a new matching node falls through.
	more := e.nodes("held2-"+e.id, 1, false, func(int) map[string]string { return map[string]string{"pool": e.id} })
	got2 := e.waitCIDRs(more...)
	assertIn(t, more[0], got2[more[0]], "10.68.0.0/16", 24)

	e.deleteNodes(nodes[0])
	_, err = res.Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err, "still held by %s", nodes[1])
	e.deleteNodes(nodes[1])
	err = e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		_, err := res.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	assert.NoError(t, err, "the ClusterCIDR goes once its last node is deleted")
}

func TestExistingCIDRsAreKept(t *testing.T) {
	e := newEnv(t)
	kept := e.nodes("kept-"+e.id, 1, false, nil, testcluster.PodCIDRs("10.69.0.0/24"))
	outside := e.nodes("outside-"+e.id, 1, false, nil, testcluster.PodCIDRs("192.168.77.0/24"))
	fresh := e.nodes("fresh-"+e.id, 3, false, nil)
	// Without MultiClusterCIDR: --cluster-cidr alone, no ClusterCIDR object involved.
	e.start(Options{ClusterCIDRs: pfxs("10.69.0.0/16")})
	got := e.waitCIDRs(append(append(kept, outside...), fresh...)...)
	assert.Equal(t, []string{"10.69.0.0/24"}, got[kept[0]])
	assert.Equal(t, []string{"192.168.77.0/24"}, got[outside[0]])
	for _, n := range fresh {
		assertIn(t, n, got[n], "10.69.0.0/16", 24)
	}
	assertNoOverlap(t, got)
	e.waitEvent(metav1.NamespaceDefault, outside[0], ReasonCIDROutsideClusterCIDRs)
}

func TestExhaustedRangeWaitsForAReleasedNode(t *testing.T) {
	e := newEnv(t)
	first := e.nodes("full-"+e.id, 2, false, nil)
	e.start(Options{ClusterCIDRs: pfxs("10.70.0.0/23")})
	got := e.waitCIDRs(first...)
	assertNoOverlap(t, got)

	late := e.nodes("late-"+e.id, 1, false, nil)
	e.waitEvent(metav1.NamespaceDefault, late[0], ReasonCIDRNotAvailable)
	e.deleteNodes(first[0])
	got2 := e.waitCIDRs(late...)
	assert.Equal(t, got[first[0]], got2[late[0]], "the released block goes to the waiting node")
}

func TestRestartContinuesWithoutDuplicates(t *testing.T) {
	e := newEnv(t)
	opts := Options{ClusterCIDRs: pfxs("10.71.0.0/16"), MultiClusterCIDR: true}
	e.clusterCIDR("r-"+e.id, ClusterCIDRSpec{NodeSelector: oneTerm(in("pool", e.id)), PerNodeHostBits: 4, IPv4: "10.72.0.0/24"})
	label := func(i int) map[string]string {
		if i%2 == 0 {
			return map[string]string{"pool": e.id}
		}
		return nil
	}
	before := e.nodes("r1-"+e.id, 20, false, label)
	stop := e.start(opts)
	got1 := e.waitCIDRs(before...)
	stop()

	after := e.nodes("r2-"+e.id, 20, false, label)
	e.start(opts)
	got := e.waitCIDRs(append(before, after...)...)
	for _, n := range before {
		assert.Equal(t, got1[n], got[n], "node %s keeps its CIDRs", n)
	}
	assertNoOverlap(t, got)
}

// startLeader runs the controller under lease with leader.RunController, a new Controller per
// term, as every server of an HA control plane does; stop ends it and releases the Lease.
func (e *env) startLeader(client kubernetes.Interface, opts Options, lease leader.Lease) (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = testLabel + "=" + e.id }))
	go func() {
		defer close(done)
		leader.RunController(ctx, client, lease, factory, func(ctx context.Context, f informers.SharedInformerFactory) error {
			ctrl, err := New(client, opts)
			if err != nil {
				return err
			}
			return ctrl.Start(ctx, f)
		}, nil)
	}()
	stop = func() { cancel(); <-done }
	e.t.Cleanup(stop)
	return stop
}

func TestTwoControllersRacingGiveNoDuplicates(t *testing.T) {
	e := newEnv(t)
	opts := Options{ClusterCIDRs: pfxs("10.73.0.0/16")}
	// Each with its own client, as two servers would have.
	for _, id := range []string{"a", "b"} {
		client, err := kubernetes.NewForConfig(e.c.Config)
		require.NoError(t, err)
		e.startLeader(client, opts, leader.Lease{Namespace: "kube-system", Name: "clustercidr-" + e.id, Identity: id})
	}
	names := e.nodes("race-"+e.id, 200, false, nil)
	got := e.waitCIDRs(names...)
	assertNoOverlap(t, got)
}

func TestLeaseHandoverMidwayGivesNoDuplicates(t *testing.T) {
	e := newEnv(t)
	opts := Options{ClusterCIDRs: pfxs("10.74.0.0/16")}
	leaseName := "clustercidr-" + e.id
	stops := map[string]func(){}
	for _, id := range []string{"a", "b"} {
		client, err := kubernetes.NewForConfig(e.c.Config)
		require.NoError(t, err)
		stops[id] = e.startLeader(client, opts, leader.Lease{Namespace: "kube-system", Name: leaseName, Identity: id})
	}
	var holder string
	require.NoError(t, e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		l, err := e.c.Client.CoordinationV1().Leases("kube-system").Get(ctx, leaseName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, err
		}
		holder = *l.Spec.HolderIdentity
		return holder != "", nil
	}))

	names := e.nodes("ha-"+e.id, 200, false, nil)
	// Stop the leader while it allocates; the other instance takes the Lease and finishes.
	require.NoError(t, e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		list, err := e.c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: testLabel + "=" + e.id})
		if err != nil {
			return false, err
		}
		done := 0
		for _, n := range list.Items {
			if len(n.Spec.PodCIDRs) > 0 {
				done++
			}
		}
		return done >= 20, nil
	}))
	stops[holder]()
	got := e.waitCIDRs(names...)
	assertNoOverlap(t, got)
}

func TestClusterRoleIsEnough(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	cfg := e.c.ImpersonateRole(t, "k3snet-clustercidr-"+e.id, ClusterRole())
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)

	name := "rbac-" + e.id
	e.clusterCIDR(name, ClusterCIDRSpec{NodeSelector: oneTerm(in("pool", e.id)), PerNodeHostBits: 8, IPv4: "10.75.0.0/16"})
	nodes := e.nodes("rbac-"+e.id, 2, false, func(i int) map[string]string {
		if i == 0 {
			return map[string]string{"pool": e.id}
		}
		return nil
	})
	e.t.Cleanup(func() { e.deleteClusterCIDR(DefaultClusterCIDRName) })
	stopCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = testLabel + "=" + e.id }))
	ctrl, err := New(client, Options{
		ClusterCIDRs: pfxs("10.76.0.0/16"), MultiClusterCIDR: true, Dynamic: dyn,
	})
	require.NoError(t, err)
	require.NoError(t, ctrl.Start(stopCtx, factory))
	got := e.waitCIDRs(nodes...)
	assertIn(t, nodes[0], got[nodes[0]], "10.75.0.0/16", 24)
	assertIn(t, nodes[1], got[nodes[1]], "10.76.0.0/16", 24)

	// Finalizer written by the controller, and removed on deletion once the node is gone.
	require.NoError(t, e.c.Poll(ctx, func(ctx context.Context) (bool, error) {
		obj, err := e.dyn.Resource(clusterCIDRGVR).Get(ctx, name, metav1.GetOptions{})
		return err == nil && len(obj.GetFinalizers()) == 1, err
	}))
	e.deleteNodes(nodes[0])
	require.NoError(t, e.dyn.Resource(clusterCIDRGVR).Delete(ctx, name, metav1.DeleteOptions{}))
	require.NoError(t, e.c.Poll(ctx, func(ctx context.Context) (bool, error) {
		_, err := e.dyn.Resource(clusterCIDRGVR).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}))
}
