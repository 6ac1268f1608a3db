package netpol

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkScale measures how Compile's cost grows with the workload: the workload of record
// (50 nodes, 100 namespaces, 5,000 pods, 100 local, 1,000 policies) times 1, 10 and 100
// (K3SNET_SCALE_MAX limits the largest, default 10: 100× needs several GB and minutes). Per
// scale: the first compile and render (the first sync's CPU before the kernel), a local pod
// added and a policy added through the warm cache (one event → rules), an unchanged
// recompile (a resync with nothing new), and the heap held between syncs. Run with
// -benchtime=1x: each scale builds its input once.
func BenchmarkScale(b *testing.B) {
	maxScale := 10
	if v, err := strconv.Atoi(os.Getenv("K3SNET_SCALE_MAX")); err == nil && v > 0 {
		maxScale = v
	}
	for _, scale := range []int{1, 10, 100} {
		if scale > maxScale {
			continue
		}
		b.Run(fmt.Sprintf("x%d", scale), func(b *testing.B) {
			before := heapInUse()
			in := workloadInput(50*scale, 100*scale, 5000*scale, 100*scale, 1000*scale)
			inputHeap := heapInUse() - min(heapInUse(), before)
			cache := newCompileCache()
			start := time.Now()
			st, err := cache.compile(in)
			require.NoError(b, err)
			renderAll(st)
			first := time.Since(start)
			held := heapInUse()

			localPod := in
			localPod.Pods = append(slices.Clone(in.Pods), workloadPod(in.Pods[0], "pod-new", workloadPodIP(0, 250*scale, 50*scale, 100*scale)))
			policyAdded := in
			np := in.Policies[1].DeepCopy()
			np.Name = "pol-new"
			policyAdded.Policies = append(slices.Clone(in.Policies), np)
			timed := func(next Input) time.Duration {
				start := time.Now()
				_, err := cache.compile(next)
				require.NoError(b, err)
				d := time.Since(start)
				_, err = cache.compile(in) // back, untimed
				require.NoError(b, err)
				return d
			}
			var pod, policy, unchanged time.Duration
			for b.Loop() {
				pod, policy = timed(localPod), timed(policyAdded)
				start := time.Now()
				_, err := cache.compile(in)
				require.NoError(b, err)
				unchanged = time.Since(start)
			}
			b.ReportMetric(first.Seconds()*1000, "first-ms")
			b.ReportMetric(pod.Seconds()*1000, "pod-event-ms")
			b.ReportMetric(policy.Seconds()*1000, "policy-event-ms")
			b.ReportMetric(unchanged.Seconds()*1000, "unchanged-ms")
			b.ReportMetric(float64(held-min(held, before))/(1<<20), "heap-MB")
			b.ReportMetric(float64(inputHeap)/(1<<20), "input-heap-MB")
			var entries, rules int
			for _, rs := range st.Rulesets {
				for _, s := range rs.Sets {
					entries += len(s.Entries)
				}
				for _, ch := range rs.Chains {
					rules += len(ch.Rules)
				}
			}
			b.ReportMetric(float64(rules), "rules")
			b.ReportMetric(float64(entries), "set-entries")
			runtime.KeepAlive(in)
			runtime.KeepAlive(cache)
		})
	}
}
