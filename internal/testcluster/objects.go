package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/k3snet/k3snet/internal/controlplane"
)

// WaitTimeout is how long helpers wait for the cluster to reach a state.
const WaitTimeout = 60 * time.Second

// Namespace creates a namespace with a unique name for this test and deletes it afterwards.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	ns, err := c.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		err := c.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// NodeOption changes a Node built by Node.
type NodeOption func(*corev1.Node)

// Node builds a kwok-managed Node. Give it a name unique to the test, e.g. from UniqueName.
func Node(name string, opts ...NodeOption) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        name,
		Labels:      map[string]string{corev1.LabelHostname: name},
		Annotations: map[string]string{controlplane.KwokNodeAnnotation: controlplane.KwokNodeAnnotationValue},
	}}
	for _, o := range opts {
		o(n)
	}
	return n
}

// Labels adds labels to the node.
func Labels(kv map[string]string) NodeOption {
	return func(n *corev1.Node) {
		for k, v := range kv {
			n.Labels[k] = v
		}
	}
}

// Annotations adds annotations to the node.
func Annotations(kv map[string]string) NodeOption {
	return func(n *corev1.Node) {
		for k, v := range kv {
			n.Annotations[k] = v
		}
	}
}

// Taints adds taints to the node.
func Taints(taints ...corev1.Taint) NodeOption {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, taints...) }
}

// InternalIP adds InternalIP addresses to the node's status.
func InternalIP(ips ...string) NodeOption { return addresses(corev1.NodeInternalIP, ips) }

// ExternalIP adds ExternalIP addresses to the node's status.
func ExternalIP(ips ...string) NodeOption { return addresses(corev1.NodeExternalIP, ips) }

// PodCIDRs sets spec.podCIDR(s); kwok then gives the node's pods addresses from it.
func PodCIDRs(cidrs ...string) NodeOption {
	return func(n *corev1.Node) {
		n.Spec.PodCIDRs = cidrs
		if len(cidrs) > 0 {
			n.Spec.PodCIDR = cidrs[0]
		}
	}
}

// Unmanaged leaves the node out of kwok's hands, for a node whose pods a dataplane test runs
// itself (it stays NotReady unless the test reports otherwise).
func Unmanaged() NodeOption {
	return func(n *corev1.Node) { delete(n.Annotations, controlplane.KwokNodeAnnotation) }
}

func addresses(typ corev1.NodeAddressType, ips []string) NodeOption {
	return func(n *corev1.Node) {
		for _, ip := range ips {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: typ, Address: ip})
		}
	}
}

// UniqueName returns prefix plus a random suffix, for cluster-scoped objects such as Nodes
// that tests of one package share a cluster for.
func UniqueName(prefix string) string { return prefix + "-" + rand.String(5) }

// AddNodes creates the nodes, waits until kwok reports the managed ones Ready, sets their
// status addresses (a Node create drops status, so they go through the status subresource
// afterwards) and deletes the nodes when the test ends.
func (c *Cluster) AddNodes(t testing.TB, nodes ...*corev1.Node) []*corev1.Node {
	t.Helper()
	ctx := context.Background()
	var created []*corev1.Node
	for _, want := range nodes {
		want = withKwokAddresses(want)
		n, err := c.Client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating node %s: %v", want.Name, err)
		}
		name := n.Name
		t.Cleanup(func() {
			err := c.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting node %s: %v", name, err)
			}
		})
		created = append(created, n)
	}
	for i, want := range nodes {
		want = withKwokAddresses(want)
		if _, managed := want.Annotations[controlplane.KwokNodeAnnotation]; managed {
			c.WaitNodeReady(t, want.Name)
		}
		if len(want.Status.Addresses) > 0 {
			created[i] = c.SetNodeAddresses(t, want.Name, want.Status.Addresses...)
		}
	}
	return created
}

// withKwokAddresses returns a copy of a kwok-managed node with addresses that carries a
// Hostname address too. kwok's node-initialize stage rewrites the whole address list of a node
// that lacks an InternalIP or a Hostname, and on a loaded machine it can apply that stage again
// from a stale copy after AddNodes set the addresses, leaving the node with none. A node
// created with both is left alone.
func withKwokAddresses(n *corev1.Node) *corev1.Node {
	if _, managed := n.Annotations[controlplane.KwokNodeAnnotation]; !managed || len(n.Status.Addresses) == 0 ||
		slices.ContainsFunc(n.Status.Addresses, func(a corev1.NodeAddress) bool { return a.Type == corev1.NodeHostName }) {
		return n
	}
	n = n.DeepCopy()
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.Name})
	return n
}

// SetNodeAddresses replaces the node's status.addresses.
func (c *Cluster) SetNodeAddresses(t testing.TB, name string, addrs ...corev1.NodeAddress) *corev1.Node {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"addresses": addrs}})
	if err != nil {
		t.Fatal(err)
	}
	// A JSON merge patch replaces the whole list, where a strategic merge would keep stale
	// entries of the same type.
	n, err := c.Client.CoreV1().Nodes().Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatalf("setting addresses of node %s: %v", name, err)
	}
	return n
}

// WaitNodeReady waits until the node's Ready condition is True.
func (c *Cluster) WaitNodeReady(t testing.TB, name string) {
	t.Helper()
	err := c.Poll(context.Background(), func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return NodeReady(n), nil
	})
	if err != nil {
		t.Fatalf("node %s not Ready after %s: %v", name, WaitTimeout, err)
	}
}

// Poll calls cond every 100 ms until it returns true or an error, or WaitTimeout passes.
func (c *Cluster) Poll(ctx context.Context, cond wait.ConditionWithContextFunc) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, WaitTimeout, true, cond)
	if err != nil {
		return fmt.Errorf("waiting: %w", err)
	}
	return nil
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodReady reports whether the pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
