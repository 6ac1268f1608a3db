package netpol

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/k3snet/k3snet/internal/benchworkload"
	"github.com/k3snet/k3snet/internal/netns"
)

// workloadInput is the workload `nodes namespaces pods local policies` (internal/benchworkload;
// of record: 50 100 5000 100 1000) as the input of node-0, the node under test.
func workloadInput(nodes, namespaces, pods, local, policies int) Input {
	size := benchworkload.Size{Nodes: nodes, Namespaces: namespaces, Pods: pods, Local: local, Policies: policies}
	w := benchworkload.Generate(size)
	return Input{NodeName: benchworkload.NodeName(0), PodCIDRs: []netip.Prefix{size.PodCIDR(0)},
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}, NodePortFirst: 30000, NodePortLast: 32767,
		Namespaces: w.Namespaces, Pods: w.Pods, Policies: w.Policies}
}

// nodeCacheInput returns in with its pods as a node process's Pod cache holds them:
// SharedPodFields' copies.
func nodeCacheInput(in Input) Input {
	share := SharedPodFields()
	for i, pod := range in.Pods {
		in.Pods[i] = share(pod)
	}
	return in
}

// workloadPodIP is the address of the i-th pod of node in that workload.
func workloadPodIP(node, i, nodes, local int) string {
	return benchworkload.Size{Nodes: nodes, Local: local}.PodIP(node, i)
}

// workloadPod returns a copy of template named name with address ip: a pod that starts.
func workloadPod(template *corev1.Pod, name, ip string) *corev1.Pod {
	return benchworkload.Pod(template, name, ip)
}

// renderAll renders a state as a first sync on an empty kernel would.
func renderAll(st State) (ipsets string, tables []string) {
	for _, rs := range st.Rulesets {
		ipsets += renderNewSets(rs.Sets)
		tables = append(tables, renderIPTables(rs, tableState{}, nil))
	}
	return ipsets, tables
}

// BenchmarkCompileRender compiles and renders the workload of record for node-0.
func BenchmarkCompileRender(b *testing.B) {
	in := workloadInput(50, 100, 5000, 100, 1000)
	b.ReportAllocs()
	for b.Loop() {
		st, err := Compile(in)
		if err != nil {
			b.Fatal(err)
		}
		renderAll(st)
	}
}

// BenchmarkIPBlockExcepts times the worst case of ipBlock subtraction: random /32 or /128
// excepts under 0.0.0.0/0 or ::/0, each of which cuts the most prefixes out. "subtract"
// is the sweep alone, without the bound (entries is its output); "compile" is Compile of a
// policy holding the block and selecting a local pod, with the bound: the first cases are
// refused, "compile/at-the-bound" is a policy of maxPolicyBlockEntries /32 peers.
func BenchmarkIPBlockExcepts(b *testing.B) {
	cases := []struct {
		name    string
		cidr    string
		excepts int
		v6      bool
	}{
		{name: "ipv4-2000", cidr: "0.0.0.0/0", excepts: 2000},
		{name: "ipv6-2000", cidr: "::/0", excepts: 2000, v6: true},
		{name: "ipv4-8000", cidr: "0.0.0.0/0", excepts: 8000},
	}
	for _, c := range cases {
		b.Run("subtract/"+c.name, func(b *testing.B) {
			cidr, excepts := netip.MustParsePrefix(c.cidr), randomExcepts(c.excepts, c.v6)
			var out []netip.Prefix
			for b.Loop() {
				out, _ = subtractExcepts(nil, cidr, excepts, math.MaxInt)
			}
			b.ReportMetric(float64(len(out)), "entries")
		})
	}
	compile := func(b *testing.B, np *networkingv1.NetworkPolicy) {
		in := Input{NodeName: "node-1", Namespaces: []*corev1.Namespace{makeNamespace("x")},
			Pods:     []*corev1.Pod{makePod("x", "a", onNode("node-1"), withIPs("10.42.0.1", "fd42::1"))},
			Policies: []*networkingv1.NetworkPolicy{np}, Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Compile(in)
		}
	}
	for _, c := range cases {
		b.Run("compile/"+c.name, func(b *testing.B) {
			var except []string
			for _, e := range randomExcepts(c.excepts, c.v6) {
				except = append(except, e.String())
			}
			compile(b, makePolicy("x", "p", ingressRules(from(peers(cidrPeer(c.cidr, except...))))))
		})
	}
	b.Run("compile/at-the-bound", func(b *testing.B) {
		compile(b, blockPolicy("p", []int{maxPolicyBlockEntries}))
	})
}

// BenchmarkIncrementalCompile times what the controller's compile costs per event on the
// workload of record, with its cache warm: each iteration applies one event to the input and
// compiles, then (untimed) undoes it and compiles again; "full compile after a local pod is
// added" is what every event cost before the cache. It also reports the heap in use
// after a GC with the input, the cache and the last State live, as the controller holds them
// between syncs (heap-MB; the informers' own copies of the objects are larger than these
// minimal ones), and the part of it the cache and State take (cache-heap-MB).
func BenchmarkIncrementalCompile(b *testing.B) {
	in := workloadInput(50, 100, 5000, 100, 1000)
	withPods := func(pods ...*corev1.Pod) Input {
		next := in
		next.Pods = append(slices.Clone(in.Pods), pods...)
		return next
	}
	relabelled := func() Input {
		next := in
		next.Namespaces = slices.Clone(in.Namespaces)
		ns := next.Namespaces[0].DeepCopy()
		ns.Labels["env"] = "dev"
		next.Namespaces[0] = ns
		return next
	}
	policyAdded := func() Input {
		next := in
		np := in.Policies[1].DeepCopy()
		np.Name = "pol-new"
		next.Policies = append(slices.Clone(in.Policies), np)
		return next
	}
	events := []struct {
		name  string
		event Input
	}{
		{"local pod added", withPods(workloadPod(in.Pods[0], "pod-new", "10.42.0.250"))},
		{"remote pod added", withPods(workloadPod(in.Pods[4999], "pod-new", "10.42.9.250"))},
		{"namespace relabelled", relabelled()},
		{"policy added", policyAdded()},
	}
	before := heapInUse()
	cache := newCompileCache()
	last, err := cache.compile(in)
	require.NoError(b, err)
	for _, ev := range events {
		b.Run(ev.name, func(b *testing.B) {
			for b.Loop() {
				_, err := cache.compile(ev.event)
				require.NoError(b, err)
				b.StopTimer()
				last, err = cache.compile(in)
				require.NoError(b, err)
				b.StartTimer()
			}
		})
	}
	b.Run("full compile after a local pod is added", func(b *testing.B) {
		for b.Loop() {
			_, err := Compile(events[0].event)
			require.NoError(b, err)
		}
	})
	b.Run("heap", func(b *testing.B) {
		for b.Loop() {
		}
		used := heapInUse()
		b.ReportMetric(float64(used)/(1<<20), "heap-MB")
		b.ReportMetric(float64(used-min(used, before))/(1<<20), "cache-heap-MB")
	})
	runtime.KeepAlive(last)
	runtime.KeepAlive(cache)
}

// heapInUse returns the bytes of heap in use after a garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestWorkloadShape pins what the workload of record compiles to, so the benchmark keeps
// measuring the same thing.
func TestWorkloadShape(t *testing.T) {
	st, err := Compile(workloadInput(50, 100, 5000, 100, 1000))
	require.NoError(t, err)
	require.Len(t, st.Rulesets, 1)
	rs := st.Rulesets[0]
	var pods, policies, rules, entries int
	for _, ch := range rs.Chains {
		rules += len(ch.Rules)
		switch {
		case len(ch.Name) == 28 && ch.Name[:len(podChainPrefix)] == podChainPrefix:
			pods++
		case len(ch.Name) == 28:
			policies++
		}
	}
	for _, s := range rs.Sets {
		entries += len(s.Entries)
	}
	t.Logf("workload of record: %d pod group chains, %d policy chains, %d rules, %d sets, %d set entries", pods, policies, rules, len(rs.Sets), entries)
	require.Equal(t, 200, pods, "each of the 100 local pods is in a namespace of its own, whose policies all select it: an ingress and an egress group each")
	require.Equal(t, 1334, policies, "1000 ingress chains and 334 egress chains")
}

// BenchmarkApplyWorkload times the kernel side of a full sync of the workload of record in
// a fresh network namespace: the first sync on an empty node (ipset restore of every set and
// the iptables-restore), then a resync with nothing changed. kube-router's first full sync
// of this workload took 8.4-9.1 s (measured for the netpol baseline).
func BenchmarkApplyWorkload(b *testing.B) {
	netns.Require(b)
	in := workloadInput(50, 100, 5000, 100, 1000)
	node := netns.NewT(b, "bench")
	dp := NewDataplane(nsRunner(node))
	benchmarkApply(b, dp, in, "10.42.0.250")
	ctx := b.Context()
	b.Run("compile and apply after one local pod is added", func(b *testing.B) {
		in := workloadInput(50, 100, 5000, 100, 1000)
		base, err := Compile(in)
		require.NoError(b, err)
		in.Pods = append(in.Pods, workloadPod(in.Pods[0], "pod-new", "10.42.0.250"))
		for b.Loop() {
			b.StopTimer()
			require.NoError(b, dp.Apply(ctx, base))
			b.StartTimer()
			st, err := Compile(in)
			require.NoError(b, err)
			require.NoError(b, dp.Apply(ctx, st))
		}
	})
}

// BenchmarkApplyScale is BenchmarkApplyWorkload's kernel side on the workload of record times
// 10 and 100, run only when K3SNET_SCALE_MAX asks for that scale (a 10× first sync writes
// about 41,000 rules and 93,000 set entries). Run with -benchtime=1x.
func BenchmarkApplyScale(b *testing.B) {
	netns.Require(b)
	for _, scale := range []int{10, 100} {
		if os.Getenv("K3SNET_SCALE_MAX") == "" || scale > scaleMax() {
			continue
		}
		b.Run(fmt.Sprintf("x%d", scale), func(b *testing.B) {
			in := nodeCacheInput(workloadInput(50*scale, 100*scale, 5000*scale, 100*scale, 1000*scale))
			node := netns.NewT(b, "bench")
			benchmarkApply(b, NewDataplane(nsRunner(node)), in, workloadPodIP(0, 250*scale, 50*scale, 100*scale))
		})
	}
}

// benchmarkApply times, on dp, in's first sync on an empty node, an unchanged resync, a
// drift-repair resync and the controller's compile and apply after a local pod with address
// ip is added.
func benchmarkApply(b *testing.B, dp *Dataplane, in Input, ip string) {
	st, err := Compile(in)
	require.NoError(b, err)
	ctx := b.Context()
	b.Run("first sync", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			require.NoError(b, dp.Cleanup(ctx))
			b.StartTimer()
			require.NoError(b, dp.Apply(ctx, st))
		}
	})
	b.Run("compile and first sync", func(b *testing.B) {
		// What a starting controller does once its informers are synced: compile from a cold
		// cache, then the first sync.
		for b.Loop() {
			b.StopTimer()
			require.NoError(b, dp.Cleanup(ctx))
			runtime.GC()
			b.StartTimer()
			st, err := newCompileCache().compile(in)
			require.NoError(b, err)
			require.NoError(b, dp.Apply(ctx, st))
		}
	})
	b.Run("unchanged resync", func(b *testing.B) {
		require.NoError(b, dp.Apply(ctx, st))
		for b.Loop() {
			require.NoError(b, dp.Apply(ctx, st))
		}
	})
	b.Run("drift-repair resync", func(b *testing.B) {
		// Every MaxSyncInterval: the caches are dropped and the kernel read back in full.
		require.NoError(b, dp.Apply(ctx, st))
		for b.Loop() {
			dp.ForgetApplied()
			require.NoError(b, dp.Apply(ctx, st))
		}
	})
	b.Run("incremental compile and apply after one local pod is added", func(b *testing.B) {
		// What the controller does: its compile cache is warm from the previous sync.
		cache := newCompileCache()
		base, err := cache.compile(in)
		require.NoError(b, err)
		added := in
		added.Pods = append(slices.Clone(in.Pods), workloadPod(in.Pods[0], "pod-new", ip))
		for b.Loop() {
			b.StopTimer()
			require.NoError(b, dp.Apply(ctx, base))
			b.StartTimer()
			st, err := cache.compile(added)
			require.NoError(b, err)
			require.NoError(b, dp.Apply(ctx, st))
			b.StopTimer()
			base, err = cache.compile(in)
			require.NoError(b, err)
			b.StartTimer()
		}
	})
}
