package servicelb

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/k3snet/k3snet/internal/testcluster"
)

// The integration tests run the controller against a real control plane shared by the
// package, through a client that impersonates a user bound to ClusterRole only, so the role is
// tested with the code. Tests run one after the other; each has its own LB namespace, nodes,
// addresses and ports, because a DaemonSet of an earlier test may still be going away while
// the next test's nodes come up.

var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }

// harness is one test's controller and its namespaces.
type harness struct {
	t     testing.TB
	c     *testcluster.Cluster
	admin kubernetes.Interface
	// client impersonates a user bound to ClusterRole only; writes records its writes with
	// their content types, Events too: they are writes a user sees.
	client kubernetes.Interface
	writes *testcluster.WriteCounter
	// lbNS is the controller's Options.Namespace, ns the Services' namespace.
	lbNS, ns string
	ctrl     *Controller
	stop     context.CancelFunc
}

// newHarness starts a controller with opts (Namespace set to a fresh namespace) through a
// client bound to ClusterRole only.
func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	return newWrappedHarness(t, opts, nil)
}

// newWrappedHarness is newHarness with the controller's client, and so its informers, passed
// through wrap when it is not nil: BenchmarkScale serves the LB pods and Nodes from a
// simulation that way.
func newWrappedHarness(t testing.TB, opts Options, wrap func(kubernetes.Interface) kubernetes.Interface) *harness {
	t.Helper()
	c := cluster.Get(t)
	h := &harness{t: t, c: c, admin: c.Client, writes: &testcluster.WriteCounter{ContentType: true}}
	h.lbNS = c.Namespace(t)
	h.ns = c.Namespace(t)

	cfg := c.ImpersonateRole(t, testcluster.UniqueName("k3snet-servicelb"), ClusterRole())
	cfg.Wrap(h.writes.Wrap)
	var err error
	h.client, err = kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	if wrap != nil {
		h.client = wrap(h.client)
	}

	// Cleanups run last-in first-out. The Services go first, while the controller runs, so it
	// deletes their DaemonSets and releases them: a Service left behind would be served by
	// the next test's controller. Should the controller be stopped already, the finalizers are
	// released by hand.
	t.Cleanup(h.releaseServices)
	opts.Namespace = h.lbNS
	h.ctrl, h.stop = h.start(opts)
	t.Cleanup(func() { h.stop() }) // whichever controller runs by then
	t.Cleanup(h.deleteServices)
	return h
}

// start builds and starts a controller on its own factory.
func (h *harness) start(opts Options) (*Controller, context.CancelFunc) {
	h.t.Helper()
	ctrl, err := New(h.client, opts)
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(h.client, 0)
	require.NoError(h.t, ctrl.Start(ctx, factory))
	return ctrl, cancel
}

// deleteServices deletes the test's Services and waits until they are gone.
func (h *harness) deleteServices() {
	ctx := context.Background()
	svcs, err := h.admin.CoreV1().Services(h.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Errorf("listing Services: %v", err)
		return
	}
	for _, svc := range svcs.Items {
		err := h.admin.CoreV1().Services(h.ns).Delete(ctx, svc.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			h.t.Errorf("deleting Service %s: %v", svc.Name, err)
		}
	}
	err = h.c.Poll(ctx, func(ctx context.Context) (bool, error) {
		svcs, err := h.admin.CoreV1().Services(h.ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(svcs.Items) == 0, err
	})
	if err != nil {
		h.t.Errorf("Services not gone: %v", err)
	}
}

func (h *harness) releaseServices() {
	svcs, err := h.admin.CoreV1().Services(h.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Logf("listing Services: %v", err)
		return
	}
	for _, svc := range svcs.Items {
		if len(svc.Finalizers) == 0 {
			continue
		}
		_, err := h.admin.CoreV1().Services(h.ns).Patch(context.Background(), svc.Name, types.MergePatchType,
			[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			h.t.Logf("releasing Service %s: %v", svc.Name, err)
		}
	}
}

// createService creates lbService(name, port, tweaks...) in the test's namespace.
func (h *harness) createService(name string, port int32, tweaks ...svcTweak) *corev1.Service {
	h.t.Helper()
	out, err := h.admin.CoreV1().Services(h.ns).Create(h.t.Context(), h.lbService(name, port, tweaks...), metav1.CreateOptions{})
	require.NoError(h.t, err)
	return out
}

// lbService is a selector-less LoadBalancer Service on TCP port.
func (h *harness) lbService(name string, port int32, tweaks ...svcTweak) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "p", Protocol: corev1.ProtocolTCP, Port: port}},
		},
	}
	for _, tw := range tweaks {
		tw(svc)
	}
	return svc
}

func (h *harness) getService(name string) *corev1.Service {
	h.t.Helper()
	svc, err := h.admin.CoreV1().Services(h.ns).Get(h.t.Context(), name, metav1.GetOptions{})
	require.NoError(h.t, err)
	return svc
}

// waitIngress waits until the Service publishes exactly ips, in order, each with mode.
func (h *harness) waitIngress(name string, mode corev1.LoadBalancerIPMode, ips ...string) *corev1.Service {
	h.t.Helper()
	var got []string
	var svc *corev1.Service
	err := h.c.Poll(h.t.Context(), func(ctx context.Context) (bool, error) {
		var err error
		svc, err = h.admin.CoreV1().Services(h.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = got[:0]
		for _, in := range svc.Status.LoadBalancer.Ingress {
			m := corev1.LoadBalancerIPMode("<nil>")
			if in.IPMode != nil {
				m = *in.IPMode
			}
			if m != mode {
				return false, nil
			}
			got = append(got, in.IP)
		}
		return slices.Equal(got, ips), nil
	})
	if err != nil {
		h.dumpState()
	}
	require.NoError(h.t, err, "Service %s should publish %v with ipMode %s; it has %v", name, ips, mode, got)
	return svc
}

// dumpState logs what a failed wait needs to be understood: nodes, LB pods, DaemonSets, Events.
func (h *harness) dumpState() {
	ctx := context.Background()
	if nodes, err := h.admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, n := range nodes.Items {
			h.t.Logf("node %s ready=%v labels=%v taints=%v addresses=%v", n.Name, testcluster.NodeReady(&n), n.Labels, n.Spec.Taints, n.Status.Addresses)
		}
	}
	if pods, err := h.admin.CoreV1().Pods(h.lbNS).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			h.t.Logf("pod %s node=%q phase=%s ready=%v ip=%s", p.Name, p.Spec.NodeName, p.Status.Phase, testcluster.PodReady(&p), p.Status.PodIP)
		}
	}
	if dss, err := h.admin.AppsV1().DaemonSets(h.lbNS).List(ctx, metav1.ListOptions{}); err == nil {
		for _, ds := range dss.Items {
			h.t.Logf("daemonset %s nodeSelector=%v status=%+v", ds.Name, ds.Spec.Template.Spec.NodeSelector, ds.Status)
		}
	}
	for _, ns := range []string{h.ns, h.lbNS} {
		if events, err := h.admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, e := range events.Items {
				h.t.Logf("event %s/%s %s %s: %s", ns, e.InvolvedObject.Name, e.Type, e.Reason, e.Message)
			}
		}
	}
}

// settle waits until the controller has written nothing for a second, so that the Events a
// recorder sends in the background are not counted as the next step's writes. It bounds the
// wait and never fails: a controller that keeps writing fails the check that follows.
func (h *harness) settle() {
	last, quiet := h.writes.Count(), 0
	for range 40 {
		time.Sleep(250 * time.Millisecond)
		if n := h.writes.Count(); n != last {
			last, quiet = n, 0
			continue
		}
		if quiet++; quiet == 4 {
			return
		}
	}
}

// waitEvent waits for an Event on the Service with reason whose message contains text.
func (h *harness) waitEvent(name, reason, text string) corev1.Event {
	h.t.Helper()
	var found corev1.Event
	var seen []string
	err := h.c.Poll(h.t.Context(), func(ctx context.Context) (bool, error) {
		events, err := h.admin.CoreV1().Events(h.ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.name": name, "reason": reason}.String(),
		})
		if err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range events.Items {
			seen = append(seen, e.Message)
			if strings.Contains(e.Message, text) {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(h.t, err, "Service %s should get a %s Event containing %q; it has %q", name, reason, text, seen)
	return found
}

// daemonSetOf returns the Service's DaemonSet, or nil.
func (h *harness) daemonSetOf(svc *corev1.Service) *appsv1.DaemonSet {
	h.t.Helper()
	ds, err := h.admin.AppsV1().DaemonSets(h.lbNS).Get(h.t.Context(), daemonSetName(svc.Name, svc.UID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(h.t, err)
	return ds
}

// waitRolledOut waits until the Service's DaemonSet is labelled for allowList and runs an
// up-to-date ready pod on each of n nodes: a changed template replaces the pods one by one,
// and the status follows them.
func (h *harness) waitRolledOut(svc *corev1.Service, allowList bool, n int32) *appsv1.DaemonSet {
	h.t.Helper()
	var ds *appsv1.DaemonSet
	err := h.c.Poll(h.t.Context(), func(context.Context) (bool, error) {
		ds = h.daemonSetOf(svc)
		return ds != nil && ds.Labels[h.ctrl.keys.NodeSelector] == strconv.FormatBool(allowList) &&
			ds.Status.ObservedGeneration == ds.Generation && ds.Status.DesiredNumberScheduled == n &&
			ds.Status.UpdatedNumberScheduled == n && ds.Status.NumberReady == n && ds.Status.NumberAvailable == n, nil
	})
	require.NoError(h.t, err, "the DaemonSet of Service %s should roll out to %d nodes: %+v", svc.Name, n, ds)
	return ds
}

func (h *harness) waitDaemonSetGone(svc *corev1.Service) {
	h.t.Helper()
	err := h.c.Poll(h.t.Context(), func(ctx context.Context) (bool, error) {
		_, err := h.admin.AppsV1().DaemonSets(h.lbNS).Get(ctx, daemonSetName(svc.Name, svc.UID), metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	require.NoError(h.t, err, "the DaemonSet of Service %s should be deleted", svc.Name)
}

// patchService applies a JSON merge patch to the Service as an admin.
func (h *harness) patchService(name string, patch any) {
	h.t.Helper()
	data, err := json.Marshal(patch)
	require.NoError(h.t, err)
	_, err = h.admin.CoreV1().Services(h.ns).Patch(h.t.Context(), name, types.MergePatchType, data, metav1.PatchOptions{})
	require.NoError(h.t, err)
}

func (h *harness) labelNode(name string, labels map[string]any) {
	h.t.Helper()
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	require.NoError(h.t, err)
	_, err = h.admin.CoreV1().Nodes().Patch(h.t.Context(), name, types.MergePatchType, data, metav1.PatchOptions{})
	require.NoError(h.t, err)
}

// resyncWritesNothing syncs every Service of the harness's namespace again, the way a resync
// or a restart would, and checks that nothing was written.
func (h *harness) resyncWritesNothing() {
	h.t.Helper()
	svcs, err := h.ctrl.services.Services(h.ns).List(labels.Everything())
	require.NoError(h.t, err)
	h.settle()
	before := h.writes.Count()
	for _, svc := range svcs {
		require.NoError(h.t, h.ctrl.sync(h.t.Context(), cache.MetaObjectToName(svc)))
	}
	assert.Empty(h.t, h.writes.Since(before), "a resync of %d Services in steady state should write nothing", len(svcs))
}

func nodeAddr(typ corev1.NodeAddressType, ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: typ, Address: ip}
}

func TestServesLoadBalancerFromEveryNode(t *testing.T) {
	h := newHarness(t, Options{})
	name := testcluster.UniqueName("every")
	a, b := name+"-a", name+"-b"
	h.c.AddNodes(t,
		testcluster.Node(a, testcluster.InternalIP("10.71.0.1")),
		testcluster.Node(b, testcluster.InternalIP("10.71.0.2")),
	)

	h.createService("web", 17001)
	svc := h.waitIngress("web", corev1.LoadBalancerIPModeVIP, "10.71.0.1", "10.71.0.2")
	assert.Contains(t, svc.Finalizers, LoadBalancerCleanupFinalizer)
	// One ready LB pod per node, from the DaemonSet in the LB namespace.
	ds := h.waitRolledOut(svc, false, 2)
	h.waitEvent("web", ReasonAppliedDaemonSet, ds.Name)
	// Both nodes usually arrive in one step ("[] -> [both]"); on a loaded machine a pod can
	// turn Ready after statusSettleWindow, which is a second step. Either way an Event
	// announces the final pair.
	h.waitEvent("web", ReasonUpdatedLoadBalancer, "-> [10.71.0.1 10.71.0.2]")

	// Each node is published by its ExternalIP if it has one, else by its InternalIP, as the
	// K3s docs say, and a node's new address reaches the status without touching the pods
	// (K3s #7036).
	h.c.SetNodeAddresses(t, b, nodeAddr(corev1.NodeInternalIP, "10.71.0.2"), nodeAddr(corev1.NodeExternalIP, "203.0.113.2"))
	h.waitIngress("web", corev1.LoadBalancerIPModeVIP, "10.71.0.1", "203.0.113.2")
	h.c.SetNodeAddresses(t, b, nodeAddr(corev1.NodeInternalIP, "10.71.0.2"), nodeAddr(corev1.NodeExternalIP, "203.0.113.3"))
	h.waitIngress("web", corev1.LoadBalancerIPModeVIP, "10.71.0.1", "203.0.113.3")
	// An ExternalIP no client can use (one another cloud controller wrote) is skipped: the node
	// falls back to its InternalIP and hides no other node.
	h.c.SetNodeAddresses(t, a, nodeAddr(corev1.NodeInternalIP, "10.71.0.1"), nodeAddr(corev1.NodeExternalIP, "0.0.0.0"))
	h.c.SetNodeAddresses(t, b, nodeAddr(corev1.NodeInternalIP, "10.71.0.22"), nodeAddr(corev1.NodeExternalIP, "0.0.0.0"))
	h.waitIngress("web", corev1.LoadBalancerIPModeVIP, "10.71.0.1", "10.71.0.22")

	// The annotation switches one Service to ipMode Proxy.
	h.patchService("web", map[string]any{"metadata": map[string]any{"annotations": map[string]string{h.ctrl.keys.IPMode: "proxy"}}})
	h.waitIngress("web", corev1.LoadBalancerIPModeProxy, "10.71.0.1", "10.71.0.22")
	h.waitEvent("web", ReasonUpdatedLoadBalancer, "IPs [10.71.0.1 10.71.0.22] with new ipMode: VIP -> Proxy")

	h.resyncWritesNothing()

	// A restarted controller finds everything in place and writes nothing either.
	h.settle()
	before := h.writes.Count()
	ctrl2, stop2 := h.start(Options{Namespace: h.lbNS})
	defer stop2()
	err := h.c.Poll(t.Context(), func(context.Context) (bool, error) { return ctrl2.queue.Len() == 0, nil })
	require.NoError(t, err)
	require.NoError(t, ctrl2.sync(t.Context(), cache.ObjectName{Namespace: h.ns, Name: "web"}))
	h.settle()
	assert.Empty(t, h.writes.Since(before), "a restarted controller should write nothing")
}

func TestSamePortWaitsForTheFirstService(t *testing.T) {
	h := newHarness(t, Options{})
	name := testcluster.UniqueName("port")
	h.c.AddNodes(t,
		testcluster.Node(name+"-a", testcluster.InternalIP("10.72.0.1")),
		testcluster.Node(name+"-b", testcluster.InternalIP("10.72.0.2")),
	)

	first := h.createService("first", 17002)
	h.waitIngress("first", corev1.LoadBalancerIPModeVIP, "10.72.0.1", "10.72.0.2")

	h.createService("second", 17002)
	h.waitEvent("second", ReasonUnAvailableLoadBalancer, "port 17002/TCP taken by "+h.lbNS+"/"+daemonSetName(first.Name, first.UID))
	require.NotNil(t, h.daemonSetOf(h.getService("second")), "the waiting Service keeps its DaemonSet, whose pods stay Pending")
	assert.Empty(t, h.getService("second").Status.LoadBalancer.Ingress)

	// Different ports coexist on the same nodes.
	h.createService("third", 17003)
	h.waitIngress("third", corev1.LoadBalancerIPModeVIP, "10.72.0.1", "10.72.0.2")
	assert.Empty(t, h.getService("second").Status.LoadBalancer.Ingress)

	// Deleting the first Service frees the port: its DaemonSet goes, its finalizer is
	// released, and the second Service gets the nodes.
	require.NoError(t, h.admin.CoreV1().Services(h.ns).Delete(t.Context(), "first", metav1.DeleteOptions{}))
	h.waitDaemonSetGone(first)
	err := h.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		_, err := h.admin.CoreV1().Services(h.ns).Get(ctx, "first", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	require.NoError(t, err, "the deleted Service should go once its finalizer is released")
	h.waitIngress("second", corev1.LoadBalancerIPModeVIP, "10.72.0.1", "10.72.0.2")
}

func TestAllowListModeAndPools(t *testing.T) {
	h := newHarness(t, Options{})
	keys := h.ctrl.keys
	name := testcluster.UniqueName("allow")
	a, b, c := name+"-a", name+"-b", name+"-c"
	h.c.AddNodes(t,
		testcluster.Node(a, testcluster.InternalIP("10.73.0.1")),
		testcluster.Node(b, testcluster.InternalIP("10.73.0.2")),
		testcluster.Node(c, testcluster.InternalIP("10.73.0.3")),
	)
	h.createService("all", 17004)
	h.waitIngress("all", corev1.LoadBalancerIPModeVIP, "10.73.0.1", "10.73.0.2", "10.73.0.3")

	// The first enablelb label switches to allow-list mode.
	h.labelNode(a, map[string]any{keys.EnableLB: "true"})
	svc := h.waitIngress("all", corev1.LoadBalancerIPModeVIP, "10.73.0.1")
	ds := h.waitRolledOut(svc, true, 1)
	assert.Equal(t, map[string]string{keys.EnableLB: "true"}, ds.Spec.Template.Spec.NodeSelector)
	assert.Equal(t, "true", ds.Labels[keys.NodeSelector])

	// A pool: the Service's lbpool label picks the nodes of that pool.
	h.labelNode(b, map[string]any{keys.EnableLB: "true", keys.LBPool: "blue"})
	h.waitIngress("all", corev1.LoadBalancerIPModeVIP, "10.73.0.1", "10.73.0.2")
	h.createService("blue", 17005, withLabel(keys.LBPool, "blue"))
	h.waitIngress("blue", corev1.LoadBalancerIPModeVIP, "10.73.0.2")
	// A label change on an existing Service moves it (K3s ignores Service label changes).
	h.labelNode(c, map[string]any{keys.PoolLabel("green"): "true", keys.EnableLB: "true"})
	h.waitIngress("all", corev1.LoadBalancerIPModeVIP, "10.73.0.1", "10.73.0.2", "10.73.0.3")
	h.patchService("blue", map[string]any{"metadata": map[string]any{"labels": map[string]string{keys.LBPool: "green"}}})
	h.waitIngress("blue", corev1.LoadBalancerIPModeVIP, "10.73.0.3")

	// Removing the last enablelb label ends allow-list mode: every node again (K3s #14625).
	for _, n := range []string{a, b, c} {
		h.labelNode(n, map[string]any{keys.EnableLB: nil})
	}
	ds = h.waitRolledOut(svc, false, 3)
	assert.Empty(t, ds.Spec.Template.Spec.NodeSelector, "the allow-list selector should be gone")
	h.waitIngress("all", corev1.LoadBalancerIPModeVIP, "10.73.0.1", "10.73.0.2", "10.73.0.3")
	// Outside allow-list mode a pool restricts nothing, as in K3s: every node again.
	ds = h.waitRolledOut(h.getService("blue"), false, 3)
	assert.Nil(t, ds.Spec.Template.Spec.Affinity, "the pool affinity should be gone")
	h.waitIngress("blue", corev1.LoadBalancerIPModeVIP, "10.73.0.1", "10.73.0.2", "10.73.0.3")
	h.resyncWritesNothing()
}

// TestPoolsAsInTheDocs is the K3s documentation's example of lbpool: nodes A and B in pool1,
// C and D in pool2, all labelled enablelb=true, and one Service on port 443 in each pool, each
// served by its own pool's nodes. Before any node carries enablelb, the pool label restricts
// nothing and the pooled Service is served by every node.
func TestPoolsAsInTheDocs(t *testing.T) {
	h := newHarness(t, Options{})
	keys := h.ctrl.keys
	name := testcluster.UniqueName("docs")
	a, b, c, d := name+"-a", name+"-b", name+"-c", name+"-d"
	h.c.AddNodes(t,
		testcluster.Node(a, testcluster.InternalIP("10.79.0.1"), testcluster.Labels(map[string]string{keys.LBPool: "pool1"})),
		testcluster.Node(b, testcluster.InternalIP("10.79.0.2"), testcluster.Labels(map[string]string{keys.LBPool: "pool1"})),
		testcluster.Node(c, testcluster.InternalIP("10.79.0.3"), testcluster.Labels(map[string]string{keys.LBPool: "pool2"})),
		testcluster.Node(d, testcluster.InternalIP("10.79.0.4"), testcluster.Labels(map[string]string{keys.LBPool: "pool2"})),
	)

	// No enablelb node: pool1's Service is served by every node, pool2's nodes included.
	one := h.createService("pool1", 443, withLabel(keys.LBPool, "pool1"))
	ds := h.waitRolledOut(one, false, 4)
	assert.Nil(t, ds.Spec.Template.Spec.Affinity, "outside allow-list mode a pool is no affinity")
	h.waitIngress("pool1", corev1.LoadBalancerIPModeVIP, "10.79.0.1", "10.79.0.2", "10.79.0.3", "10.79.0.4")

	// The docs' steps 1 and 2: every node enablelb=true, with its pool.
	for _, n := range []string{a, b, c, d} {
		h.labelNode(n, map[string]any{keys.EnableLB: "true"})
	}
	// Step 3: the pool1 Service runs on A and B only.
	h.waitRolledOut(one, true, 2)
	h.waitIngress("pool1", corev1.LoadBalancerIPModeVIP, "10.79.0.1", "10.79.0.2")
	// Step 4: another Service on the same port, in pool2, runs on C and D.
	two := h.createService("pool2", 443, withLabel(keys.LBPool, "pool2"))
	h.waitRolledOut(two, true, 2)
	h.waitIngress("pool2", corev1.LoadBalancerIPModeVIP, "10.79.0.3", "10.79.0.4")
	h.waitIngress("pool1", corev1.LoadBalancerIPModeVIP, "10.79.0.1", "10.79.0.2")
	h.resyncWritesNothing()
}

// TestSysctlForbiddenIsReported: an LB pod that a kubelet refuses for its sysctls (set here by
// hand, as a stock kubelet would) gets the Service a Warning that names the kubelet flag, once.
func TestSysctlForbiddenIsReported(t *testing.T) {
	h := newHarness(t, Options{})
	name := testcluster.UniqueName("sysctl")
	node := name + "-a"
	h.c.AddNodes(t, testcluster.Node(node, testcluster.InternalIP("10.80.0.1")))
	svc := h.createService("web", 17012)
	h.waitIngress("web", corev1.LoadBalancerIPModeVIP, "10.80.0.1")

	pods, err := h.admin.CoreV1().Pods(h.lbNS).List(t.Context(), metav1.ListOptions{
		LabelSelector: labels.Set{h.ctrl.keys.SvcName: svc.Name, h.ctrl.keys.SvcNamespace: svc.Namespace}.String(),
	})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	pod := pods.Items[0]
	status, err := json.Marshal(map[string]any{"status": map[string]any{
		"phase": corev1.PodFailed, "reason": "SysctlForbidden",
		"message": `Pod forbidden sysctl: "net.ipv4.ip_forward" not allowlisted`,
	}})
	require.NoError(t, err)
	_, err = h.admin.CoreV1().Pods(h.lbNS).Patch(t.Context(), pod.Name, types.MergePatchType, status, metav1.PatchOptions{}, "status")
	require.NoError(t, err)

	e := h.waitEvent("web", ReasonSysctlForbidden, "--allowed-unsafe-sysctls=net.ipv4.ip_forward,net.ipv6.conf.all.forwarding")
	assert.Equal(t, corev1.EventTypeWarning, e.Type)
	assert.Contains(t, e.Message, "node "+node)
	assert.Contains(t, e.Message, "net.ipv4.ip_forward")

	// The DaemonSet controller replaces the failed pod, kwok runs the new one, and the Service
	// is served again; the one rejection was announced once.
	h.waitRolledOut(svc, false, 1)
	h.waitIngress("web", corev1.LoadBalancerIPModeVIP, "10.80.0.1")
	h.settle()
	events, err := h.admin.CoreV1().Events(h.ns).List(t.Context(), metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": "web", "reason": ReasonSysctlForbidden}.String(),
	})
	require.NoError(t, err)
	require.Len(t, events.Items, 1)
	assert.EqualValues(t, 1, events.Items[0].Count, "one rejected pod is one Warning")
}

func TestExternalTrafficPolicyLocalPublishesNodesWithEndpoints(t *testing.T) {
	h := newHarness(t, Options{})
	name := testcluster.UniqueName("local")
	a, b := name+"-a", name+"-b"
	h.c.AddNodes(t,
		testcluster.Node(a, testcluster.InternalIP("10.74.0.1")),
		testcluster.Node(b, testcluster.InternalIP("10.74.0.2")),
	)
	svc := h.createService("local", 17006, withLocal())
	err := h.c.Poll(t.Context(), func(context.Context) (bool, error) {
		ds := h.daemonSetOf(svc)
		return ds != nil && ds.Status.NumberReady == 2, nil
	})
	require.NoError(t, err, "the LB pods should run on both nodes")
	assert.Empty(t, h.getService("local").Status.LoadBalancer.Ingress, "no node has an endpoint yet")

	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "local-1", Namespace: h.ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: "local",
			discoveryv1.LabelManagedBy:   "servicelb-test",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.42.0.9"},
			NodeName:   &b,
			Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "backend", Namespace: h.ns},
		}},
	}
	slice, err = h.admin.DiscoveryV1().EndpointSlices(h.ns).Create(t.Context(), slice, metav1.CreateOptions{})
	require.NoError(t, err)
	h.waitIngress("local", corev1.LoadBalancerIPModeVIP, "10.74.0.2")

	// A merge patch replaces the endpoint list whole, whoever touched the slice meanwhile.
	setEndpoints := func(eps []discoveryv1.Endpoint) {
		data, err := json.Marshal(map[string]any{"endpoints": eps})
		require.NoError(t, err)
		_, err = h.admin.DiscoveryV1().EndpointSlices(h.ns).Patch(t.Context(), slice.Name, types.MergePatchType, data, metav1.PatchOptions{})
		require.NoError(t, err)
	}
	slice.Endpoints[0].NodeName = &a
	setEndpoints(slice.Endpoints)
	h.waitIngress("local", corev1.LoadBalancerIPModeVIP, "10.74.0.1")

	slice.Endpoints[0].Conditions.Ready = new(false)
	setEndpoints(slice.Endpoints)
	h.waitIngress("local", corev1.LoadBalancerIPModeVIP)
	h.waitEvent("local", ReasonUnAvailableLoadBalancer, messageUnAvailableLoadBalancer)
}

func TestServicesThatStopBeingOursAreCleanedUp(t *testing.T) {
	h := newHarness(t, Options{})
	name := testcluster.UniqueName("stop")
	h.c.AddNodes(t, testcluster.Node(name+"-a", testcluster.InternalIP("10.75.0.1")))

	// A type change away from LoadBalancer removes the DaemonSet, the status and the finalizer.
	svc := h.createService("typed", 17007)
	h.waitIngress("typed", corev1.LoadBalancerIPModeVIP, "10.75.0.1")
	h.patchService("typed", map[string]any{"spec": map[string]any{"type": corev1.ServiceTypeClusterIP}})
	h.waitDaemonSetGone(svc)
	h.waitEvent("typed", ReasonDeletedDaemonSet, daemonSetName(svc.Name, svc.UID))
	err := h.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		svc, err := h.admin.CoreV1().Services(h.ns).Get(ctx, "typed", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(svc.Finalizers) == 0 && len(svc.Status.LoadBalancer.Ingress) == 0, nil
	})
	require.NoError(t, err, "the finalizer and the status should be gone")

	// A Service of another implementation is never touched, status included.
	classed := h.createService("classed", 17008, func(s *corev1.Service) {
		s.Spec.LoadBalancerClass = new("example.com/other")
	})
	status := []byte(`{"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.9","ipMode":"Proxy"}]}}}`)
	_, err = h.admin.CoreV1().Services(h.ns).Patch(t.Context(), "classed", types.MergePatchType, status, metav1.PatchOptions{}, "status")
	require.NoError(t, err)
	// The legacy finalizer of an unclassed Service is ours to remove; on a classed one it is not.
	h.createService("legacy", 17009, func(s *corev1.Service) {
		s.Finalizers = []string{h.ctrl.keys.LegacyFinalizer}
	})
	h.waitIngress("legacy", corev1.LoadBalancerIPModeVIP, "10.75.0.1")
	assert.Equal(t, []string{LoadBalancerCleanupFinalizer}, h.getService("legacy").Finalizers)
	before := h.writes.Count()
	require.NoError(t, h.ctrl.sync(t.Context(), cache.MetaObjectToName(classed)))
	assert.Empty(t, h.writes.Since(before))
	classed = h.getService("classed")
	assert.Empty(t, classed.Finalizers)
	assert.Equal(t, "198.51.100.9", classed.Status.LoadBalancer.Ingress[0].IP)
	assert.Nil(t, h.daemonSetOf(classed))

	// A Service that cannot be rendered gets a Warning and keeps the DaemonSet it had.
	legacy := h.getService("legacy")
	h.patchService("legacy", map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		h.ctrl.keys.Tolerations: "[{\"key\": \"a\", \"operator\": \"Bogus\"}]",
	}}})
	h.waitEvent("legacy", ReasonSyncLoadBalancerFailed, "Bogus")
	assert.NotNil(t, h.daemonSetOf(legacy))
	h.waitIngress("legacy", corev1.LoadBalancerIPModeVIP, "10.75.0.1")
}

func TestCleanupRemovesDaemonSetsAndReleasesServices(t *testing.T) {
	h := newHarness(t, Options{})
	name := testcluster.UniqueName("cleanup")
	h.c.AddNodes(t, testcluster.Node(name+"-a", testcluster.InternalIP("10.76.0.1")))
	svc := h.createService("web", 17010)
	h.waitIngress("web", corev1.LoadBalancerIPModeVIP, "10.76.0.1")
	require.NotNil(t, h.daemonSetOf(svc))

	// --disable=servicelb: the controller does not run, Cleanup does, with only the role.
	h.stop()
	for range 2 {
		require.NoError(t, Cleanup(t.Context(), h.client, h.lbNS), "Cleanup should succeed, and again")
	}
	h.waitDaemonSetGone(svc)
	assert.Empty(t, h.getService("web").Finalizers)
}

func TestTakesOverADaemonSetK3sLeftWithAStaleAllowList(t *testing.T) {
	h := newHarness(t, Options{})
	keys := h.ctrl.keys
	name := testcluster.UniqueName("takeover")
	h.c.AddNodes(t,
		testcluster.Node(name+"-a", testcluster.InternalIP("10.77.0.1")),
		testcluster.Node(name+"-b", testcluster.InternalIP("10.77.0.2")),
	)
	// K3s ran before us: it rendered the DaemonSet in allow-list mode and wrote it with
	// another field manager; the enablelb labels are gone since (K3s #14625).
	h.stop()
	svc := h.createService("web", 17011)
	old, err := newDaemonSet(svc, daemonSetParams{keys: keys, namespace: h.lbNS, allowList: true})
	require.NoError(t, err)
	old.TypeMeta = metav1.TypeMeta{}
	_, err = h.admin.AppsV1().DaemonSets(h.lbNS).Create(t.Context(), old, metav1.CreateOptions{FieldManager: "k3s"})
	require.NoError(t, err)

	h.ctrl, h.stop = h.start(Options{Namespace: h.lbNS})
	ds := h.waitRolledOut(svc, false, 2)
	assert.Empty(t, ds.Spec.Template.Spec.NodeSelector, "the stale allow-list selector should be gone")
	h.waitIngress("web", corev1.LoadBalancerIPModeVIP, "10.77.0.1", "10.77.0.2")
	h.resyncWritesNothing()
}

func TestReservedHostPortsAreRefused(t *testing.T) {
	h := newHarness(t, Options{ReservedHostPorts: []int32{17021}})
	name := testcluster.UniqueName("reserved")
	h.c.AddNodes(t, testcluster.Node(name+"-a", testcluster.InternalIP("10.78.0.1")))
	ports := func(port int32) map[string]any {
		return map[string]any{"spec": map[string]any{"ports": []map[string]any{{"name": "p", "protocol": "TCP", "port": port}}}}
	}

	h.createService("kubelet", 17021)
	h.waitEvent("kubelet", ReasonSyncLoadBalancerFailed, "host port 17021 is reserved on the nodes")
	assert.Nil(t, h.daemonSetOf(h.getService("kubelet")), "a Service on a reserved port gets no DaemonSet")

	// A free port is served; moving back to the reserved one withdraws the DaemonSet and the
	// address, so the port is free again.
	h.patchService("kubelet", ports(17022))
	svc := h.waitIngress("kubelet", corev1.LoadBalancerIPModeVIP, "10.78.0.1")
	h.patchService("kubelet", ports(17021))
	h.waitDaemonSetGone(svc)
	h.waitIngress("kubelet", corev1.LoadBalancerIPModeVIP)
}
