package clustercidr

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/testcluster"
)

// Dual stack end to end, against the package's shared control plane: the
// default ClusterCIDR from two --cluster-cidr ranges, the one perNodeHostBits both families
// share, spec.podCIDRs with one block per family (IPv4 first: upstream tried the IPv4 set, then
// the IPv6 set), dual-stack and IPv6-only ClusterCIDRs chosen by label, and both blocks freed on delete.

// getNode reads the node from the API.
func (e *env) getNode(name string) *corev1.Node {
	e.t.Helper()
	n, err := e.c.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(e.t, err)
	return n
}

// assertDualStack checks that the node has exactly an IPv4 /v4Bits inside v4 and then an IPv6
// /v6Bits inside v6 in spec.podCIDRs, and that spec.podCIDR is the first of them.
func assertDualStack(t *testing.T, n *corev1.Node, v4 string, v4Bits int, v6 string, v6Bits int) {
	t.Helper()
	require.Len(t, n.Spec.PodCIDRs, 2, "node %s: %v", n.Name, n.Spec.PodCIDRs)
	p4, p6 := netip.MustParsePrefix(n.Spec.PodCIDRs[0]), netip.MustParsePrefix(n.Spec.PodCIDRs[1])
	assert.True(t, p4.Addr().Is4(), "node %s: first pod CIDR %s is not IPv4", n.Name, p4)
	assert.True(t, netip.MustParsePrefix(v4).Contains(p4.Addr()), "node %s: %s not inside %s", n.Name, p4, v4)
	assert.Equal(t, v4Bits, p4.Bits(), "node %s: IPv4 block %s", n.Name, p4)
	assert.True(t, p6.Addr().Is6(), "node %s: second pod CIDR %s is not IPv6", n.Name, p6)
	assert.True(t, netip.MustParsePrefix(v6).Contains(p6.Addr()), "node %s: %s not inside %s", n.Name, p6, v6)
	assert.Equal(t, v6Bits, p6.Bits(), "node %s: IPv6 block %s", n.Name, p6)
	assert.Equal(t, n.Spec.PodCIDRs[0], n.Spec.PodCIDR, "node %s: spec.podCIDR is the first of spec.podCIDRs", n.Name)
}

// freeBlocks returns clustercidr_free_cidrs of the ClusterCIDR by family ("ipv4", "ipv6").
func freeBlocks(t *testing.T, reg metrics.KubeRegistry, clusterCIDR string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != metricsSubsystem+"_free_cidrs" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["cluster_cidr"] == clusterCIDR {
				got[l["family"]] = m.GetGauge().GetValue()
			}
		}
	}
	return got
}

func TestDualStackDefaultClusterCIDR(t *testing.T) {
	e := newEnv(t)
	names := e.nodes("ds-"+e.id, 3, false, nil)
	// Default node masks /24 and /64: 8 and 64 host bits; the IPv4 count serves both.
	e.start(Options{ClusterCIDRs: pfxs("10.80.0.0/16", "fd00:80::/56"), MultiClusterCIDR: true})

	got := e.waitCIDRs(names...)
	for _, name := range names {
		assertDualStack(t, e.getNode(name), "10.80.0.0/16", 24, "fd00:80::/56", 120)
	}
	assertNoOverlap(t, got)

	def, err := e.dyn.Resource(clusterCIDRGVR).Get(t.Context(), DefaultClusterCIDRName, metav1.GetOptions{})
	require.NoError(t, err)
	spec, err := specFromObject(def)
	require.NoError(t, err)
	assert.Equal(t, ClusterCIDRSpec{PerNodeHostBits: 8, IPv4: "10.80.0.0/16", IPv6: "fd00:80::/56"}, spec,
		"one default ClusterCIDR with both families and one host-bit count")
}

// TestWithoutMultiClusterCIDRDualStackNodesGetA24AndA64: without --multi-cluster-cidr the
// node masks are kube-controller-manager's, one per family, as in K3s.
func TestWithoutMultiClusterCIDRDualStackNodesGetA24AndA64(t *testing.T) {
	e := newEnv(t)
	names := e.nodes("range-"+e.id, 3, false, nil)
	e.start(Options{ClusterCIDRs: pfxs("10.86.0.0/16", "fd00:86::/56")})
	got := e.waitCIDRs(names...)
	for _, name := range names {
		assertDualStack(t, e.getNode(name), "10.86.0.0/16", 24, "fd00:86::/56", 64)
	}
	assertNoOverlap(t, got)
}

func TestDualStackHostBitsFromIPv6AndReleaseOfBothBlocks(t *testing.T) {
	e := newEnv(t)
	// With --multi-cluster-cidr the default ClusterCIDR has one perNodeHostBits. IPv4 /24
	// nodes have 8 host bits, IPv6 /122 nodes 6: the IPv4 count is larger, so the IPv6 one
	// serves both (the dual-stack rule: else the IPv6 host bits if within [4, 32]). The IPv6 range holds
	// two /122 blocks and the IPv4 range 1,024 /26 blocks: IPv6 runs out first.
	opts := Options{ClusterCIDRs: pfxs("10.81.0.0/16", "fd00:81::/121"), NodeCIDRMaskSizeIPv4: 24, NodeCIDRMaskSizeIPv6: 122, MultiClusterCIDR: true}
	spec, err := opts.defaultSpec()
	require.NoError(t, err)
	require.Equal(t, int32(6), spec.PerNodeHostBits)

	first := e.nodes("hb-"+e.id, 2, false, nil)
	e.start(opts)
	got := e.waitCIDRs(first...)
	for _, name := range first {
		assertDualStack(t, e.getNode(name), "10.81.0.0/16", 26, "fd00:81::/121", 122)
	}
	assertNoOverlap(t, got)

	// A free IPv4 block is not enough: a node gets every family or none.
	late := e.nodes("hb-late-"+e.id, 1, false, nil)
	e.waitEvent(metav1.NamespaceDefault, late[0], ReasonCIDRNotAvailable)
	assert.Empty(t, e.getNode(late[0]).Spec.PodCIDRs, "no IPv4-only allocation while IPv6 is full")

	// Deleting a node frees both its blocks. Blocks go lowest first, so the waiting node gets
	// exactly the deleted node's pair: its IPv4 block only if that was freed too, since higher
	// IPv4 blocks are free all along.
	e.deleteNodes(first[0])
	got2 := e.waitCIDRs(late...)
	assert.Equal(t, got[first[0]], got2[late[0]], "the waiting node gets both blocks of the deleted one")
	assertDualStack(t, e.getNode(late[0]), "10.81.0.0/16", 26, "fd00:81::/121", 122)
}

func TestDualStackAndIPv6OnlyClusterCIDRsBySelector(t *testing.T) {
	e := newEnv(t)
	dsName, v6Name := "ds-"+e.id, "v6-"+e.id
	// Four blocks in each family: /26s of a /24 and /122s of a /120.
	e.clusterCIDR(dsName, ClusterCIDRSpec{NodeSelector: oneTerm(in("pool", dsName)), PerNodeHostBits: 6, IPv4: "10.83.0.0/24", IPv6: "fd00:83::/120"})
	// A single-family ClusterCIDR in a dual-stack cluster: its nodes get one IPv6 block only.
	e.clusterCIDR(v6Name, ClusterCIDRSpec{NodeSelector: oneTerm(in("pool", v6Name)), PerNodeHostBits: 8, IPv6: "fd00:84::/112"})

	pool := func(p string) func(int) map[string]string {
		return func(int) map[string]string { return map[string]string{"pool": p} }
	}
	ds := e.nodes("sel-ds-"+e.id, 4, false, pool(dsName))
	v6 := e.nodes("sel-v6-"+e.id, 2, false, pool(v6Name))
	plain := e.nodes("sel-plain-"+e.id, 1, false, nil)
	reg := metrics.NewKubeRegistry()
	e.start(Options{ClusterCIDRs: pfxs("10.82.0.0/16", "fd00:82::/56"), MultiClusterCIDR: true, MetricsRegistry: reg})

	got := e.waitCIDRs(append(append(append([]string{}, ds...), v6...), plain...)...)
	for _, name := range ds {
		assertDualStack(t, e.getNode(name), "10.83.0.0/24", 26, "fd00:83::/120", 122)
	}
	for _, name := range v6 {
		n := e.getNode(name)
		assertIn(t, name, n.Spec.PodCIDRs, "fd00:84::/112", 120)
		assert.Equal(t, n.Spec.PodCIDRs[0], n.Spec.PodCIDR, "node %s: spec.podCIDR is its IPv6 block", name)
	}
	assertDualStack(t, e.getNode(plain[0]), "10.82.0.0/16", 24, "fd00:82::/56", 120)
	assertNoOverlap(t, got)
	assert.Equal(t, map[string]float64{"ipv4": 0, "ipv6": 0}, freeBlocks(t, reg, dsName), "four nodes fill the dual-stack ClusterCIDR")
	v6Free := freeBlocks(t, reg, v6Name)
	assert.Equal(t, map[string]float64{"ipv6": 254}, v6Free, "the IPv6-only ClusterCIDR has no IPv4 family")

	// Deleting a dual-stack node frees a block in each family of its ClusterCIDR.
	e.deleteNodes(ds[1])
	var free map[string]float64
	err := e.c.Poll(t.Context(), func(context.Context) (bool, error) {
		free = freeBlocks(t, reg, dsName)
		return free["ipv4"] == 1 && free["ipv6"] == 1, nil
	})
	require.NoError(t, err, "free blocks of %s after a delete: %v", dsName, free)

	// The freed pair is the only free one in the ClusterCIDR, so the next node gets it.
	again := e.nodes("sel-again-"+e.id, 1, false, pool(dsName))
	got2 := e.waitCIDRs(again...)
	assert.Equal(t, got[ds[1]], got2[again[0]], "a new node gets both blocks of the deleted one")
}

// TestNodeWithFamiliesFromTwoClusterCIDRsBelongsToBoth: a node whose IPv4 CIDR lies in an
// IPv4-only ClusterCIDR and whose IPv6 CIDR lies in an IPv6-only one (set before the
// controller ran, as after a migration) is attributed to both: no outside warning, and
// deleting either ClusterCIDR waits for the node.
func TestNodeWithFamiliesFromTwoClusterCIDRsBelongsToBoth(t *testing.T) {
	e := newEnv(t)
	v4, v6 := "split-v4-"+e.id, "split-v6-"+e.id
	e.clusterCIDR(v4, ClusterCIDRSpec{NodeSelector: oneTerm(in("pool", e.id)), PerNodeHostBits: 8, IPv4: "10.84.0.0/16"})
	e.clusterCIDR(v6, ClusterCIDRSpec{NodeSelector: oneTerm(in("pool", e.id)), PerNodeHostBits: 8, IPv6: "fd00:84::/112"})
	pool := func(int) map[string]string { return map[string]string{"pool": e.id} }
	split := e.nodes("split-"+e.id, 1, false, pool, testcluster.PodCIDRs("10.84.3.0/24", "fd00:84::300/120"))[0]
	e.start(Options{ClusterCIDRs: pfxs("10.85.0.0/16"), MultiClusterCIDR: true})

	res := e.dyn.Resource(clusterCIDRGVR)
	for _, name := range []string{v6, v4} {
		require.NoError(t, e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			obj, err := res.Get(ctx, name, metav1.GetOptions{})
			return err == nil && slices.Contains(obj.GetFinalizers(), Finalizer), err
		}), "the controller guards %s", name)
		require.NoError(t, res.Delete(t.Context(), name, metav1.DeleteOptions{}))
		assert.Contains(t, e.waitEvent(metav1.NamespaceDefault, name, ReasonClusterCIDRInUse), split)
		obj, err := res.Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err, "the finalizer holds %s", name)
		assert.NotNil(t, obj.GetDeletionTimestamp())
	}
	events, err := e.c.Client.CoreV1().Events(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.name": split, "reason": ReasonCIDROutsideClusterCIDRs}.String()})
	require.NoError(t, err)
	assert.Empty(t, events.Items, "both CIDRs lie in a ClusterCIDR")
	assert.Equal(t, []string{"10.84.3.0/24", "fd00:84::300/120"}, e.getNode(split).Spec.PodCIDRs, "existing CIDRs never change")

	e.deleteNodes(split)
	for _, name := range []string{v4, v6} {
		err := e.c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			_, err := res.Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		assert.NoError(t, err, "%s goes once the node is deleted", name)
	}
}
