package clustercidr

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"testing"

	"github.com/k3snet/k3snet/internal/benchworkload"
	"github.com/stretchr/testify/require"
)

// ipamWorkload is the IPAM workload of record (bench/ipam-workload.py: 1,000 nodes, four
// ClusterCIDRs with selectors, the default from --cluster-cidr) times scale. Each group g of
// 1,000 nodes has labels and four ClusterCIDRs of its own, shaped as the record's, so the
// work per node stays the same while ClusterCIDRs grow with the nodes; group 0 is the record
// itself, and scale 1 is exactly it.
type ipamWorkload struct {
	scale int
	// name is node j's name (kubernetes.io/hostname too).
	name func(j int) string
	// suffix is appended to the ClusterCIDRs' names ("" keeps the record's names).
	suffix string
}

const groupNodes = 1000

func (w ipamWorkload) nodeCount() int { return groupNodes * w.scale }

// nodeLabels returns node j's labels: in group g, node i has zone z(4g + i%4) and pool
// p(3g + i%3), so the record's zone z0 and pool p1 become z(4g) and p(3g+1) in group g.
func (w ipamWorkload) nodeLabels(j int) map[string]string {
	g, i := j/groupNodes, j%groupNodes
	return map[string]string{
		"zone":                   "z" + strconv.Itoa(4*g+i%4),
		"pool":                   "p" + strconv.Itoa(3*g+i%3),
		"kubernetes.io/hostname": w.name(j),
	}
}

// nodes returns the allocator's view of every node.
func (w ipamWorkload) nodes() []Node {
	out := make([]Node, w.nodeCount())
	for j := range out {
		out[j] = Node{Name: w.name(j), Labels: w.nodeLabels(j)}
	}
	return out
}

// clusterCIDRs returns each group's four ClusterCIDRs: zone-a (one zone, a /16 of /24s),
// pool-1 (one pool, a /16 of /25s), z1p2 (a zone and a pool: two requirements win ties;
// a /20, full after 16 nodes) and small (two hostnames, a /28 of /28s, full after one).
// Group g's ranges are the record's moved up by 4g /16s: 10.100.0.0/16 + 4g.
func (w ipamWorkload) clusterCIDRs() []namedSpec {
	var out []namedSpec
	for g := range w.scale {
		z, p := func(k int) string { return "z" + strconv.Itoa(4*g+k) }, func(k int) string { return "p" + strconv.Itoa(3*g+k) }
		sfx := w.suffix
		if w.scale > 1 {
			sfx = "-g" + strconv.Itoa(g) + sfx
		}
		at := func(slot, bits int) string { return groupPrefix(4*g+slot, bits) }
		out = append(out,
			namedSpec{"zone-a" + sfx, ccSpec(at(0, 16), "", 8, selecting(term(in("zone", z(0)))))},
			namedSpec{"pool-1" + sfx, ccSpec(at(1, 16), "", 7, selecting(term(in("pool", p(1)))))},
			namedSpec{"z1p2" + sfx, ccSpec(at(2, 20), "", 8, selecting(term(in("zone", z(1)), in("pool", p(2)))))},
			namedSpec{"small" + sfx, ccSpec(at(3, 28), "", 4, selecting(term(in("kubernetes.io/hostname", w.name(groupNodes*g+5), w.name(groupNodes*g+6)))))},
		)
	}
	return out
}

// groupPrefix returns the k-th /16 from 10.100.0.0, cut to bits.
func groupPrefix(k, bits int) string {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32([]byte{10, 100, 0, 0})+uint32(k)<<16)
	return netip.PrefixFrom(netip.AddrFrom4(a), bits).String()
}

// defaultCIDR is --cluster-cidr: the record's 10.0.0.0/12 (/24 per node), and at larger
// scales a range clear of the groups' that holds every node, even nodes no group selects
// (BenchmarkAllocateFragmented's).
func (w ipamWorkload) defaultCIDR() string {
	switch {
	case w.scale <= 1:
		return "10.0.0.0/12"
	case w.scale <= 10:
		return "10.0.0.0/10"
	default:
		return "12.0.0.0/7"
	}
}

// allocator returns an allocator with the workload's ClusterCIDRs and the service CIDR
// 10.43.0.0/16.
func (w ipamWorkload) allocator(t testing.TB) *Allocator {
	t.Helper()
	a := newTestAllocator(t, "10.43.0.0/16")
	def, err := DefaultClusterCIDRSpec(pfxs(w.defaultCIDR()), 0, 0)
	require.NoError(t, err)
	for _, c := range append(w.clusterCIDRs(), namedSpec{DefaultClusterCIDRName, def}) {
		require.NoError(t, a.AddClusterCIDR(c.name, c.spec))
	}
	return a
}

// scalesUpTo returns the scales to run of those given: K3SNET_SCALE_MAX (default def) is
// the largest, so `make bench` stays short and a longer run asks for more.
func scalesUpTo(def int, scales ...int) []int {
	limit := benchworkload.ScaleMax(def)
	var out []int
	for _, s := range scales {
		if s <= limit {
			out = append(out, s)
		}
	}
	return out
}
