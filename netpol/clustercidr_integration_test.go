package netpol

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"

	"github.com/k3snet/k3snet/clustercidr"
	"github.com/k3snet/k3snet/internal/netns"

	"github.com/k3snet/k3snet/netpol/reference"
)

// TestDefaultDenyCoversPodCIDRsFromTwoClusterCIDRs is the multi-cluster-CIDR cross-check:
// the node's IPv4 pod CIDR lies in the IPv4-only default ClusterCIDR (--cluster-cidr) and its
// IPv6 pod CIDR in an IPv6-only ClusterCIDR. The clustercidr controller attributes the node to
// both (deleting the IPv6 one waits for it), and netpol's default deny and policies hold in
// both CIDRs, checked with real packets.
func TestDefaultDenyCoversPodCIDRsFromTwoClusterCIDRs(t *testing.T) {
	netns.Require(t)
	c := sharedCluster.Get(t)
	ctx := t.Context()
	an := newAPINode(t, c) // node1: 10.42.0.0/24 and fd42::/64, node2: 10.42.1.0/24 and fd42:1::/64

	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	ccs := dyn.Resource(schema.GroupVersionResource{Group: clustercidr.Group, Version: clustercidr.Version, Resource: clustercidr.Resource})
	v6Name := an.prefix + "-v6"
	ipam, err := clustercidr.New(c.Client, clustercidr.Options{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}, MultiClusterCIDR: true, Dynamic: dyn})
	require.NoError(t, err)
	ipamCtx, stopIPAM := context.WithCancel(ctx)
	t.Cleanup(func() {
		// The controller first, then the objects it guards, so the next test starts clean.
		stopIPAM()
		for _, name := range []string{v6Name, clustercidr.DefaultClusterCIDRName} {
			_, err := ccs.Patch(context.Background(), name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			if err == nil {
				err = ccs.Delete(context.Background(), name, metav1.DeleteOptions{})
			}
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("removing ClusterCIDR %s: %v", name, err)
			}
		}
	})
	require.NoError(t, ipam.Start(ipamCtx, informers.NewSharedInformerFactory(c.Client, 0)))
	v6 := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": clustercidr.Group + "/" + clustercidr.Version, "kind": clustercidr.Kind,
		"metadata": map[string]any{"name": v6Name},
		"spec":     map[string]any{"perNodeHostBits": int64(64), "ipv6": "fd42::/48"},
	}}
	_, err = ccs.Create(ctx, v6, metav1.CreateOptions{})
	require.NoError(t, err)

	t.Run("the node belongs to both ClusterCIDRs", func(t *testing.T) {
		for _, name := range []string{clustercidr.DefaultClusterCIDRName, v6Name} {
			require.NoError(t, c.Poll(ctx, func(ctx context.Context) (bool, error) {
				obj, err := ccs.Get(ctx, name, metav1.GetOptions{})
				return err == nil && slices.Contains(obj.GetFinalizers(), clustercidr.Finalizer), nil
			}), "the controller guards %s", name)
		}
		require.NoError(t, ccs.Delete(ctx, v6Name, metav1.DeleteOptions{}))
		var msg string
		require.NoError(t, c.Poll(ctx, func(ctx context.Context) (bool, error) {
			list, err := c.Client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
				"involvedObject.name": v6Name, "reason": clustercidr.ReasonClusterCIDRInUse}.String()})
			if err != nil || len(list.Items) == 0 {
				return false, err
			}
			msg = list.Items[0].Message
			return true, nil
		}), "deleting the IPv6 ClusterCIDR waits for its nodes")
		assert.Contains(t, msg, an.node1)
		node, err := c.Client.CoreV1().Nodes().Get(ctx, an.node1, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{"10.42.0.0/24", "fd42::/64"}, node.Spec.PodCIDRs, "existing pod CIDRs never change")
	})

	// Hosts: 0 x/a, 1 x/b (no pod: an unprogrammed local address), 2 y/a, 5 the external client.
	const xa, xb, ya, ext = 0, 1, 2, 5
	an.createPod(t, xa)
	an.createPod(t, ya)
	an.startController(t, an.controllerClient(t, c), nil)
	tcp80 := reference.Probe{Port: 80, Family: corev1.IPv4Protocol}
	tcp80v6 := reference.Probe{Port: 80, Family: corev1.IPv6Protocol}
	running := []int{xa, ya, ext}

	t.Run("without a policy the pods are open in both CIDRs, and addresses without a pod in neither", func(t *testing.T) {
		// Nothing is blocked before the first sync, so wait for what it blocks first.
		for _, dst := range []netip.Addr{an.hosts[xb].v4, an.hosts[xb].v6} {
			require.NoError(t, c.Poll(ctx, func(context.Context) (bool, error) {
				err := an.hosts[ext].ns.Probe(netns.TCP, netip.AddrPortFrom(dst, 80), 3*time.Second)
				return netns.IsBlocked(err), nil
			}), "ext → %s (x/b, no pod) is never blocked", dst)
		}
		an.waitMatrix(t, running, an.cluster(t), tcp80, tcp80v6)
	})

	t.Run("a deny policy isolates its pods in both CIDRs", func(t *testing.T) {
		_, err := c.Client.NetworkingV1().NetworkPolicies(an.ns("x")).Create(ctx, makePolicy(an.ns("x"), "deny-ingress", ingressRules()), metav1.CreateOptions{})
		require.NoError(t, err)
		an.waitMatrix(t, running, an.cluster(t), tcp80, tcp80v6)
	})
}
