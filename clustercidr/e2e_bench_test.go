package clustercidr

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// requestCounter counts the API requests a client sends, and its Node PATCHes apart: sent,
// and answered 2xx (spec.podCIDRs set).
type requestCounter struct {
	next        http.RoundTripper
	requests    atomic.Int64
	nodePatches atomic.Int64
	nodePatched atomic.Int64
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	patch := r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/api/v1/nodes/")
	if patch {
		c.nodePatches.Add(1)
	}
	resp, err := c.next.RoundTrip(r)
	if patch && err == nil && resp.StatusCode/100 == 2 {
		c.nodePatched.Add(1)
	}
	return resp, err
}

func (c *requestCounter) reset() {
	c.requests.Store(0)
	c.nodePatches.Store(0)
	c.nodePatched.Store(0)
}

// BenchmarkEndToEnd allocates the IPAM workload of record (bench/ipam-workload.py: four
// ClusterCIDRs with selectors plus the default, 1,000 Nodes created before the controller
// starts) at 1× and 10× (ipamWorkload: 10,000 Nodes over 40 ClusterCIDRs plus the default)
// against the real API server. K3SNET_SCALE_MAX limits the largest scale (default 1: 10×
// takes some minutes). Run with -benchtime=Nx; an even N balances the order below.
//
// One op is Start until every Node's spec.podCIDRs patch has been answered. In the same op,
// after it (before it in odd ops), the floor: as many Nodes, just created in the same way,
// get one merge patch of spec.podCIDR and spec.podCIDRs each from a plain client on as
// many goroutines as the
// controller has workers, with no informer and no allocator; end-to-end/floor is how far the
// controller is from what the API server and its storage allow at that moment. Both are
// timed right after the Nodes are created, when kube-controller-manager is busy tainting
// them too (its writes are what makes the controller's conditional patches conflict).
//
// Reported: e2e-s and floor-s (and their ratio), patches/node (above 1 when a patch
// conflicted and was retried), api-requests of the controller's client, the CPU seconds of
// this process (the controller; the control plane runs in child processes, reported as
// cp-cpu-s beside floor-cp-cpu-s), and the peak heap and RSS of this process during the op.
// The Nodes are not kwok-managed, to keep kwok's own writes out of it.
func BenchmarkEndToEnd(b *testing.B) {
	for _, scale := range scalesUpTo(1, 1, 10) {
		b.Run(fmt.Sprintf("x%d-%dnodes", scale, scale*groupNodes), func(b *testing.B) {
			benchmarkEndToEnd(b, scale)
		})
	}
}

func benchmarkEndToEnd(b *testing.B, scale int) {
	e := newEnv(b)
	w := ipamWorkload{scale: scale, name: func(j int) string { return e.id + "-node-" + strconv.Itoa(j) }, suffix: "-" + e.id}
	n := w.nodeCount()
	for _, cc := range w.clusterCIDRs() {
		e.clusterCIDR(cc.name, cc.spec)
	}
	counter := &requestCounter{}
	cfg := rest.CopyConfig(e.c.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling, as a server's loopback client
	floorClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{ClusterCIDRs: pfxs(w.defaultCIDR()), MultiClusterCIDR: true, Workers: benchWorkers()}
	workers := opts.withDefaults().Workers
	create := func() []string {
		// Same names every time (the previous ones are deleted), so "small" selects two.
		return e.nodes(e.id+"-node", n, false, w.nodeLabels)
	}

	var sum struct {
		create, e2e, floor, cpu, cpCPU, floorCPCPU time.Duration
		patches, requests                          int64
		heap, rss                                  uint64
	}
	floor := func() {
		t0 := time.Now()
		names := create()
		sum.create += time.Since(t0)
		cp0, t1 := childrenCPU(b), time.Now()
		e.parallelOn(workers, n, func(j int) error {
			_, err := floorClient.CoreV1().Nodes().Patch(context.Background(), names[j], types.MergePatchType, floorPatch(j), metav1.PatchOptions{})
			return err
		})
		sum.floor += time.Since(t1)
		sum.floorCPCPU += childrenCPU(b) - cp0
		e.deleteNodes(names...)
	}
	endToEnd := func() {
		t0 := time.Now()
		names := create()
		sum.create += time.Since(t0)
		counter.reset()
		usage := startUsage(b)
		cp0 := childrenCPU(b)
		b.StartTimer()

		t1 := time.Now()
		stop := e.startWith(client, opts)
		started := time.Since(t1)
		for counter.nodePatched.Load() < int64(n) {
			time.Sleep(5 * time.Millisecond)
		}
		d := time.Since(t1)

		b.StopTimer()
		sum.e2e += d
		b.Logf("Start returned after %s, all allocated %s later", started, d-started)
		sum.cpCPU += childrenCPU(b) - cp0
		cpu, heap, rss := usage()
		sum.cpu += cpu
		sum.heap, sum.rss = max(sum.heap, heap), max(sum.rss, rss)
		stop()
		sum.patches += counter.nodePatches.Load()
		sum.requests += counter.requests.Load()
		e.waitCIDRs(names...) // the patches answered 2xx are there
		e.deleteNodes(names...)
	}
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		// Alternate which goes first: the API server on a busy machine is not the same a
		// few minutes later, and the second also finds more deleted rows in kine.
		if i%2 == 0 {
			endToEnd()
			floor()
		} else {
			floor()
			endToEnd()
		}
	}
	b.StartTimer()
	ops := float64(b.N)
	b.Logf("%d nodes, %d workers: create %s, floor %s, end to end %s (per op)", n, workers,
		sum.create/time.Duration(2*b.N), sum.floor/time.Duration(b.N), sum.e2e/time.Duration(b.N))
	b.ReportMetric(sum.e2e.Seconds()/ops, "e2e-s")
	b.ReportMetric(sum.floor.Seconds()/ops, "floor-s")
	b.ReportMetric(sum.e2e.Seconds()/sum.floor.Seconds(), "e2e/floor")
	b.ReportMetric(sum.create.Seconds()/ops/2, "create-s")
	b.ReportMetric(float64(sum.patches)/ops/float64(n), "patches/node")
	b.ReportMetric(float64(sum.requests)/ops, "api-requests")
	b.ReportMetric(sum.cpu.Seconds()/ops, "cpu-s")
	b.ReportMetric(sum.cpCPU.Seconds()/ops, "cp-cpu-s")
	b.ReportMetric(sum.floorCPCPU.Seconds()/ops, "floor-cp-cpu-s")
	b.ReportMetric(float64(sum.heap)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(sum.rss)/(1<<20), "peak-rss-MB")
}

// floorPatch is the floor's patch for node j: what the controller's patch sets, a distinct
// /24 per node for up to 65,536 nodes (the API server checks the form, not overlaps), without the resourceVersion
// precondition, so kube-controller-manager's taint writes cost it no retries.
func floorPatch(j int) []byte {
	cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(j >> 8), byte(j), 0}), 24).String()
	raw, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": cidr, "podCIDRs": []string{cidr}}})
	return raw
}

// benchWorkers is Options.Workers for the benchmark: K3SNET_BENCH_WORKERS, or 0 for the default.
func benchWorkers() int {
	w, _ := strconv.Atoi(os.Getenv("K3SNET_BENCH_WORKERS"))
	return w
}
