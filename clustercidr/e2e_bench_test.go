package clustercidr

import (
	"fmt"
	"net/http"
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

// patchCounter counts the Node PATCH requests a client sends.
type patchCounter struct {
	next    http.RoundTripper
	patches atomic.Int64
}

func (p *patchCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/api/v1/nodes/") {
		p.patches.Add(1)
	}
	return p.next.RoundTrip(r)
}

// BenchmarkEndToEnd1000Nodes is the IPAM workload of record (shared bench/ipam-workload.py,
// the IPAM baseline): four ClusterCIDRs with selectors plus the default from
// --cluster-cidr=10.0.0.0/12 (/24 per node), and 1,000 Nodes created before the controller
// starts. One op is Start until every Node has spec.podCIDRs; patches/node counts the Node
// PATCH requests. The Nodes are not kwok-managed, to keep kwok's own writes out of it.
func BenchmarkEndToEnd1000Nodes(b *testing.B) {
	const n = 1000
	e := newEnv(b)
	name := func(i int) string { return fmt.Sprintf("%s-node-%d", e.id, i) }
	e.clusterCIDR("zone-a-"+e.id, ClusterCIDRSpec{NodeSelector: oneTerm(in("zone", "z0")), PerNodeHostBits: 8, IPv4: "10.100.0.0/16"})
	e.clusterCIDR("pool-1-"+e.id, ClusterCIDRSpec{NodeSelector: oneTerm(in("pool", "p1")), PerNodeHostBits: 7, IPv4: "10.101.0.0/16"})
	e.clusterCIDR("z1p2-"+e.id, ClusterCIDRSpec{NodeSelector: oneTerm(in("zone", "z1"), in("pool", "p2")), PerNodeHostBits: 8, IPv4: "10.102.0.0/20"})
	e.clusterCIDR("small-"+e.id, ClusterCIDRSpec{NodeSelector: oneTerm(in("kubernetes.io/hostname", name(5), name(6))), PerNodeHostBits: 4, IPv4: "10.103.0.0/28"})

	counter := &patchCounter{}
	cfg := rest.CopyConfig(e.c.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling, as a server's loopback client
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{ClusterCIDRs: pfxs("10.0.0.0/12"), MultiClusterCIDR: true, Workers: benchWorkers()}

	for b.Loop() {
		b.StopTimer()
		t0 := time.Now()
		names := e.nodes(e.id+"-node", n, false, func(j int) map[string]string {
			return map[string]string{"zone": fmt.Sprintf("z%d", j%4), "pool": fmt.Sprintf("p%d", j%3)}
		})
		// Same names every iteration (the previous ones are deleted), so "small" selects two.
		counter.patches.Store(0)
		b.StartTimer()
		t1 := time.Now()
		stop := e.startWith(client, opts)
		t2 := time.Now()
		e.waitCIDRs(names...)
		// Creating the Nodes is the same number of writes as allocating them: it shows what
		// the API server and its storage allow on the machine at that moment.
		b.Logf("create %d nodes %s, Start %s, Start returned → all allocated %s", n, t1.Sub(t0), t2.Sub(t1), time.Since(t2))
		b.StopTimer()
		stop()
		b.ReportMetric(float64(counter.patches.Load())/n, "patches/node")
		// The floor: the same number of Node patches sent straight from as many goroutines
		// as the controller has workers, no informer, no allocator: what the API server
		// accepts at that moment.
		t3 := time.Now()
		workers := opts.withDefaults().Workers
		e.parallelOn(workers, n, func(j int) error {
			_, err := client.CoreV1().Nodes().Patch(b.Context(), names[j], types.MergePatchType, []byte(`{"metadata":{"labels":{"bench":"floor"}}}`), metav1.PatchOptions{})
			return err
		})
		b.Logf("floor: %d direct Node patches from %d goroutines %s", n, workers, time.Since(t3))
		e.deleteNodes(names...)
		b.StartTimer()
	}
}

// benchWorkers is Options.Workers for the benchmark: K3SNET_BENCH_WORKERS, or 0 for the default.
func benchWorkers() int {
	w, _ := strconv.Atoi(os.Getenv("K3SNET_BENCH_WORKERS"))
	return w
}
