package clustercidr

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The allocator alone, at 1×, 10× and 100× the IPAM workload of record (ipamWorkload: 1,000,
// 10,000 and 100,000 nodes over 4, 40 and 400 ClusterCIDRs plus the default). Each benchmark
// reports ns/node and allocs/node beside ns/op, so a cost that grows faster than the nodes
// shows as a per-node figure that grows with the scale. K3SNET_SCALE_MAX limits the largest
// scale (default 100: the largest op takes about a second).

// benchNodeName names the allocator benchmarks' nodes as bench/ipam-workload.py does.
func benchNodeName(j int) string { return "node-" + strconv.Itoa(j) }

// perNode runs op b.N times, each after an untimed setup, and reports ns/node and
// allocs/node for ops over n nodes.
func perNode(b *testing.B, n int, setup, op func()) {
	var ms runtime.MemStats
	var mallocs uint64
	var elapsed time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		setup()
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		b.StartTimer()
		start := time.Now()
		op()
		elapsed += time.Since(start)
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - before
		b.StartTimer()
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*n), "ns/node")
	b.ReportMetric(float64(mallocs)/float64(b.N*n), "allocs/node")
}

// BenchmarkAllocate measures allocation from empty: one op allocates every node of the
// workload on a fresh allocator (choice of ClusterCIDR, lowest free block, bookkeeping).
func BenchmarkAllocate(b *testing.B) {
	for _, scale := range scalesUpTo(100, 1, 10, 100) {
		w := ipamWorkload{scale: scale, name: benchNodeName}
		b.Run(fmt.Sprintf("x%d-%dnodes", scale, w.nodeCount()), func(b *testing.B) {
			nodes := w.nodes()
			var a *Allocator
			perNode(b, len(nodes), func() { a = w.allocator(b) }, func() {
				for _, n := range nodes {
					if _, err := a.Allocate(n); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkRestore measures start-up: one op is Restore of every node of the workload, each
// with the CIDRs Allocate gave it, sorting included.
func BenchmarkRestore(b *testing.B) {
	for _, scale := range scalesUpTo(100, 1, 10, 100) {
		w := ipamWorkload{scale: scale, name: benchNodeName}
		b.Run(fmt.Sprintf("x%d-%dnodes", scale, w.nodeCount()), func(b *testing.B) {
			nodes := w.nodes()
			src := w.allocator(b)
			for i, n := range nodes {
				got, err := src.Allocate(n)
				require.NoError(b, err)
				nodes[i].PodCIDRs = got.PodCIDRs
			}
			var a *Allocator
			perNode(b, len(nodes), func() { a = w.allocator(b) }, func() {
				if err := a.Restore(nodes); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkAllocateFragmented measures the worst shape for the used-range set: as many
// nodes as the workload has, none selected by a group's ClusterCIDR (so all in the default),
// every other one released, so about half as many separate used runs as nodes. One op
// allocates the lowest hole (merging two runs) and releases it again (splitting them); its
// cost should not grow with the number of runs.
func BenchmarkAllocateFragmented(b *testing.B) {
	for _, scale := range scalesUpTo(100, 1, 10, 100) {
		w := ipamWorkload{scale: scale, name: benchNodeName}
		b.Run(fmt.Sprintf("x%d-%dnodes", scale, w.nodeCount()), func(b *testing.B) {
			a := w.allocator(b)
			plain := make([]Node, w.nodeCount())
			for i := range plain {
				plain[i] = node("plain-" + strconv.Itoa(i))
				_, err := a.Allocate(plain[i])
				require.NoError(b, err)
			}
			for i := 1; i < len(plain); i += 2 { // odd ones: the lowest hole lies between two runs
				a.Release(plain[i].Name)
			}
			b.ReportMetric(float64(a.used[ipv4].len()), "runs")
			n := node("churn")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := a.Allocate(n); err != nil {
					b.Fatal(err)
				}
				a.Release(n.Name)
			}
		})
	}
}
