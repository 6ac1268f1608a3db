package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/nodecluster"
)

// pinnedPod is a pod that only the node named node may run.
func pinnedPod(name, node string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: ` + name + `}
spec:
  nodeSelector: {kubernetes.io/hostname: ` + node + `}
  containers: [{name: c, image: ` + images.TestServerImage + `, imagePullPolicy: Never, args: [serve, --http-port, "8080"]}]
`
}

// TestRealNodeCloudController checks the cloud-controller stub on real nodes. Agents joining
// with --node-ip and --node-external-ip get those as InternalIP and ExternalIP, providerID
// k3s://<name> and the k3s instance type, and lose the uninitialized taint their kubelet
// (--cloud-provider=external) registers them with. A pod waiting for a node that joins later
// is bound to it only after the taint is gone: the resourceVersion of the node's first
// untainted version is below that of the pod's binding (resourceVersions of one storage are
// ordered, as apimachinery's CompareResourceVersion relies on), whatever the timing.
//
// Then the server restarts with --disable-cloud-controller. As in K3s, the kubelets of nodes
// that join now run without a cloud provider: they are never tainted, report their addresses
// themselves, get no providerID and no ExternalIP (K3s's documentation says so; k3s-io/k3s
// #10037), and run pods. A node whose kubelet is given --cloud-provider=external anyway, as
// for an external cloud controller, keeps the taint, and a pod pinned to it stays Pending.
func TestRealNodeCloudController(t *testing.T) {
	c := nodecluster.Start(t, nodecluster.Options{Agents: 1, ServerArgs: []string{"--disable=traefik"},
		AgentArgs: []string{"--node-external-ip=203.0.113.11"}})
	dumpOnFailure(t, c, []string{"get", "nodes", "-o", `custom-columns=NAME:.metadata.name,TAINTS:.spec.taints,PROVIDER:.spec.providerID,ADDRESSES:.status.addresses`},
		[]string{"get", "pods", "-A", "-o", "wide"}, []string{"get", "events", "-A"})
	ctx := t.Context()
	client := c.Client(t)
	node := func(name string) *corev1.Node {
		t.Helper()
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return n
	}
	for _, n := range []struct{ name, internal, external string }{
		{"server", "172.30.0.10", ""},
		{"agent-1", "172.30.0.11", "203.0.113.11"},
	} {
		want := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.internal}}
		if n.external != "" {
			want = append(want, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: n.external})
		}
		want = append(want, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.name})
		var got *corev1.Node
		nodecluster.Eventually(t, time.Minute, n.name+" is initialized", func() bool {
			var err error
			got, err = client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			return err == nil && got.Spec.ProviderID != "" && !hasTaint(got, ccmstub.UninitializedTaint)
		})
		assert.Equal(t, want, got.Status.Addresses, "%s: addresses in K3s's order", n.name)
		assert.Equal(t, "k3s://"+n.name, got.Spec.ProviderID)
		assert.Equal(t, "k3s", got.Labels[corev1.LabelInstanceTypeStable], "%s: instance type", n.name)
	}

	// A pod pinned to a node that does not exist yet, and a record of what happens to both.
	nodeVersions := recordVersions(t, client, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", "agent-2").String()
		return client.CoreV1().Nodes().Watch(ctx, o)
	})
	podVersions := recordVersions(t, client, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", "early").String()
		return client.CoreV1().Pods("default").Watch(ctx, o)
	})
	c.Apply(t, pinnedPod("early", "agent-2"))
	c.AddAgent(t, "agent-2", "--node-external-ip=203.0.113.12")
	nodecluster.Eventually(t, 2*time.Minute, "the pinned pod runs on agent-2", func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx, "early", metav1.GetOptions{})
		return err == nil && p.Spec.NodeName == "agent-2" && podReady(p)
	})
	a2 := node("agent-2")
	assert.Equal(t, []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "172.30.0.12"},
		{Type: corev1.NodeExternalIP, Address: "203.0.113.12"},
		{Type: corev1.NodeHostName, Address: "agent-2"},
	}, a2.Status.Addresses)
	assert.Equal(t, "k3s://agent-2", a2.Spec.ProviderID)

	var untainted *corev1.Node
	var bound *corev1.Pod
	nodecluster.Eventually(t, time.Minute, "the watches delivered agent-2's untainting and the pod's binding", func() bool {
		untainted = firstVersion(nodeVersions.seen(), func(n *corev1.Node) bool { return !hasTaint(n, ccmstub.UninitializedTaint) })
		bound = firstVersion(podVersions.seen(), func(p *corev1.Pod) bool { return p.Spec.NodeName != "" })
		return untainted != nil && bound != nil
	})
	nodeVersions.stop()
	podVersions.stop()
	registered := nodeVersions.seen()[0].(*corev1.Node)
	assert.True(t, hasTaint(registered, ccmstub.UninitializedTaint), "agent-2 registers with the uninitialized taint")
	assert.Contains(t, untainted.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "172.30.0.12"},
		"the taint goes only once the node has its addresses (k3s-io/k3s#4218)")
	order, err := resourceversion.CompareResourceVersion(untainted.ResourceVersion, bound.ResourceVersion)
	require.NoError(t, err)
	assert.Negative(t, order, "agent-2 lost the taint (resourceVersion %s) before the pod was bound to it (%s)",
		untainted.ResourceVersion, bound.ResourceVersion)

	// --disable-cloud-controller: no stub, and kubelets without a cloud provider.
	c.Server.Stop(t)
	c.Server.StartWith(t, "--disable-cloud-controller")
	c.AddAgent(t, "agent-3", "--node-external-ip=203.0.113.13")
	c.Apply(t, pinnedPod("on-plain", "agent-3"))
	nodecluster.Eventually(t, 2*time.Minute, "a pod runs on agent-3, never tainted", func() bool {
		p, err := client.CoreV1().Pods("default").Get(ctx, "on-plain", metav1.GetOptions{})
		return err == nil && podReady(p)
	})
	a3 := node("agent-3")
	assert.False(t, hasTaint(a3, ccmstub.UninitializedTaint), "a kubelet without a cloud provider does not taint its node")
	assert.Empty(t, a3.Spec.ProviderID, "no cloud provider, no providerID")
	assert.Equal(t, []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "172.30.0.13"},
		{Type: corev1.NodeHostName, Address: "agent-3"},
	}, a3.Status.Addresses, "the kubelet's own addresses: --node-external-ip needs a cloud controller")
	keys := ccmstub.NewKeys("")
	for _, k := range []string{keys.InternalIP, keys.ExternalIP, keys.Hostname} {
		assert.NotContains(t, a3.Annotations, k, "the agent leaves the addresses to an external cloud controller")
	}

	c.AddAgent(t, "agent-4", "--kubelet-arg=cloud-provider=external")
	// Ready, so the uninitialized taint is the only one: the scheduler's verdict is about it.
	onlyUninitialized := []corev1.Taint{{Key: ccmstub.UninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	nodecluster.Eventually(t, time.Minute, "agent-4's only taint is the uninitialized one", func() bool {
		n, err := client.CoreV1().Nodes().Get(ctx, "agent-4", metav1.GetOptions{})
		return err == nil && equality.Semantic.DeepEqual(n.Spec.Taints, onlyUninitialized)
	})
	c.Apply(t, pinnedPod("waiting", "agent-4"))
	nodecluster.Eventually(t, 3*time.Minute, "the scheduler reports that agent-4's taint keeps the pod off it", func() bool {
		events, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=waiting,reason=FailedScheduling"})
		if err != nil {
			return false
		}
		// "1 node(s) had untolerated taint(s), 4 node(s) didn't match Pod's node
		// affinity/selector": agent-4 is the one node the selector allows.
		for _, e := range events.Items {
			if strings.Contains(e.Message, "untolerated taint") {
				t.Logf("FailedScheduling: %s", e.Message)
				return true
			}
		}
		return false
	})
	p, err := client.CoreV1().Pods("default").Get(ctx, "waiting", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, p.Spec.NodeName, "the pod is not bound")
	assert.Equal(t, corev1.PodPending, p.Status.Phase)
	assert.Equal(t, onlyUninitialized, node("agent-4").Spec.Taints, "with no cloud controller, agent-4 keeps the uninitialized taint")
}

// dumpOnFailure logs the output of each kubectl command when the test has failed, while the
// cluster still runs (cleanups run last-registered first).
func dumpOnFailure(t *testing.T, c *nodecluster.Cluster, commands ...[]string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, args := range commands {
			out, err := c.TryKubectl("", args...)
			t.Logf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
}

// versionRecorder keeps every version of the objects a watch delivers, in the order the API
// server sent them.
type versionRecorder struct {
	mu       sync.Mutex
	versions []any
	// stop ends the watch; it waits until nothing more is recorded.
	stop func()
}

// seen returns the versions recorded so far.
func (r *versionRecorder) seen() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.versions)
}

// recordVersions records what watchFunc selects from now until stop or the test's end.
func recordVersions(t *testing.T, client kubernetes.Interface, watchFunc func(context.Context, metav1.ListOptions) (watch.Interface, error)) *versionRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// The watch starts at the current resourceVersion, which any list gives.
	list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		cancel()
		t.Fatalf("listing namespaces for a resourceVersion: %v", err)
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, watcherFunc(watchFunc))
	if err != nil {
		cancel()
		t.Fatalf("watching: %v", err)
	}
	r := &versionRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				r.mu.Lock()
				r.versions = append(r.versions, ev.Object)
				r.mu.Unlock()
			}
		}
	}()
	r.stop = sync.OnceFunc(func() { cancel(); w.Stop(); <-done })
	t.Cleanup(r.stop)
	return r
}

// firstVersion returns the first of versions (all of type T) for which match holds, or nil.
func firstVersion[T any](versions []any, match func(T) bool) T {
	var zero T
	for _, o := range versions {
		if v, ok := o.(T); ok && match(v) {
			return v
		}
	}
	return zero
}

// watcherFunc adapts a function to the watcher a RetryWatcher restarts from.
type watcherFunc func(context.Context, metav1.ListOptions) (watch.Interface, error)

func (f watcherFunc) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return f(ctx, o)
}
