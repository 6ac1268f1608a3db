package clustercidr

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// workloadClusterCIDRs returns the ClusterCIDRs of bench/ipam-workload.py plus the default
// from --cluster-cidr=def (/24 per node).
func workloadClusterCIDRs(t testing.TB, def string) []namedSpec {
	t.Helper()
	defSpec, err := DefaultClusterCIDRSpec(pfxs(def), 0, 0)
	require.NoError(t, err)
	return []namedSpec{
		{"zone-a", ccSpec("10.100.0.0/16", "", 8, selecting(term(in("zone", "z0"))))},
		{"pool-1", ccSpec("10.101.0.0/16", "", 7, selecting(term(in("pool", "p1"))))},
		{"z1p2", ccSpec("10.102.0.0/20", "", 8, selecting(term(in("zone", "z1"), in("pool", "p2"))))},
		{"small", ccSpec("10.103.0.0/28", "", 4, selecting(term(in("kubernetes.io/hostname", "node-5", "node-6"))))},
		{DefaultClusterCIDRName, defSpec},
	}
}

// workloadNodes returns the nodes of bench/ipam-workload.py.
func workloadNodes(n int) []Node {
	out := make([]Node, n)
	for i := range out {
		name := "node-" + strconv.Itoa(i)
		out[i] = node(name, "zone", "z"+strconv.Itoa(i%4), "pool", "p"+strconv.Itoa(i%3), "kubernetes.io/hostname", name)
	}
	return out
}

func workloadAllocator(b *testing.B, def string) *Allocator {
	a := newTestAllocator(b, "10.43.0.0/16")
	for _, c := range workloadClusterCIDRs(b, def) {
		require.NoError(b, a.AddClusterCIDR(c.name, c.spec))
	}
	return a
}

// BenchmarkAllocate measures the allocator alone on the IPAM workload: one op is one node's
// allocation (choice of ClusterCIDR, lowest free block, bookkeeping), so ns/op and allocs/op
// are per node. Every len(nodes) ops start again on a fresh allocator, outside the timer.
// "bed" is the IPAM baseline's bed (1,000 nodes, default 10.0.0.0/12); "10k" has 10,000
// nodes and a default of 10.0.0.0/10 so that all of them fit.
func BenchmarkAllocate(b *testing.B) {
	for _, bc := range []struct {
		name  string
		nodes int
		def   string
	}{
		{"bed-1000", 1000, "10.0.0.0/12"},
		{"10k", 10000, "10.0.0.0/10"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			nodes := workloadNodes(bc.nodes)
			var a *Allocator
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i % len(nodes)
				if k == 0 {
					b.StopTimer()
					a = workloadAllocator(b, bc.def)
					b.StartTimer()
				}
				if _, err := a.Allocate(nodes[k]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRestore measures start-up: one op is Restore of 10,000 nodes that already have
// spec.podCIDRs, sorting included; ns/node and allocs/node are reported beside it.
func BenchmarkRestore(b *testing.B) {
	const def = "10.0.0.0/10"
	nodes := workloadNodes(10000)
	src := workloadAllocator(b, def)
	for i, n := range nodes {
		got, err := src.Allocate(n)
		require.NoError(b, err)
		nodes[i].PodCIDRs = got.PodCIDRs
	}
	var mallocs uint64
	var ms runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a := workloadAllocator(b, def)
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		b.StartTimer()
		if err := a.Restore(nodes); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - before
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(nodes)), "ns/node")
	b.ReportMetric(float64(mallocs)/float64(b.N*len(nodes)), "allocs/node")
}

// BenchmarkAllocateFragmented measures the worst shape for the used-range set: 10,000 nodes,
// every other one released, so about 5,000 separate used runs. One op allocates the lowest
// hole (merging two runs) and releases it again (splitting them), each a memmove of the runs
// above it.
func BenchmarkAllocateFragmented(b *testing.B) {
	a := workloadAllocator(b, "10.0.0.0/10")
	plain := make([]Node, 10000)
	for i := range plain {
		plain[i] = node("plain-" + strconv.Itoa(i))
		_, err := a.Allocate(plain[i])
		require.NoError(b, err)
	}
	for i := 1; i < len(plain); i += 2 { // odd ones: the lowest hole lies between two runs
		a.Release(plain[i].Name)
	}
	b.ReportMetric(float64(len(a.used[ipv4].spans)), "runs")
	n := node("churn")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Allocate(n); err != nil {
			b.Fatal(err)
		}
		a.Release(n.Name)
	}
}
