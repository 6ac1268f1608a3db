package netpol

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/k3snet/k3snet/internal/benchworkload"
	"github.com/stretchr/testify/require"
)

// scaleMax is the largest scale the scale benchmarks run: K3SNET_SCALE_MAX, default 10
// (100× needs several GB and minutes).
func scaleMax() int {
	return benchworkload.ScaleMax(10)
}

// BenchmarkScale measures how Compile's cost grows with the workload: the workload of record
// (50 nodes, 100 namespaces, 5,000 pods, 100 local, 1,000 policies) times 1, 10 and 100
// (scaleMax limits the largest). Per scale: the first compile and render (the first sync's
// CPU before the kernel), then through the warm cache, each followed by the comparison with
// the previous State the controller makes: a local pod added, a remote pod relabelled and a
// policy added (one event → rules), and an unchanged recompile (a resync with nothing new).
// Events report the fastest of eventRuns, wall time and the process's CPU time (GC
// included), which a busy machine disturbs less. Memory is the heap held between syncs:
// the input's (in the controller, the informer cache's, which holds SharedPodFields'
// copies), and the cache's and last State's beyond it. Run with -benchtime=1x: each scale
// builds its input once.
func BenchmarkScale(b *testing.B) {
	for _, scale := range []int{1, 10, 100} {
		if scale > scaleMax() {
			continue
		}
		b.Run(fmt.Sprintf("x%d", scale), func(b *testing.B) {
			before := heapInUse()
			in := nodeCacheInput(workloadInput(50*scale, 100*scale, 5000*scale, 100*scale, 1000*scale))
			inputHeap := heapInUse() - min(heapInUse(), before)
			cache := newCompileCache()
			var st State
			first := measure(func() {
				var err error
				st, err = cache.compile(in)
				require.NoError(b, err)
				renderAll(st)
			})
			held := heapInUse()

			localPod := in
			localPod.Pods = append(slices.Clone(in.Pods), workloadPod(in.Pods[0], "pod-new", workloadPodIP(0, 250*scale, 50*scale, 100*scale)))
			remotePod := in
			remotePod.Pods = slices.Clone(in.Pods)
			relabelled := in.Pods[len(in.Pods)-1].DeepCopy()
			relabelled.Labels["tier"] = "db"
			remotePod.Pods[len(in.Pods)-1] = relabelled
			policyAdded := in
			np := in.Policies[1].DeepCopy()
			np.Name = "pol-new"
			policyAdded.Policies = append(slices.Clone(in.Policies), np)
			event := func(next Input) cost {
				return fastest(func() cost {
					c := measure(func() {
						got, err := cache.compile(next)
						require.NoError(b, err)
						_ = reflect.DeepEqual(got, st)
					})
					_, err := cache.compile(in) // back, untimed
					require.NoError(b, err)
					return c
				})
			}
			var pod, remote, policy, unchanged cost
			for b.Loop() {
				pod, remote, policy = event(localPod), event(remotePod), event(policyAdded)
				unchanged = event(in)
			}
			first.report(b, "first")
			pod.report(b, "pod-event")
			remote.report(b, "remote-pod-event")
			policy.report(b, "policy-event")
			unchanged.report(b, "unchanged")
			b.ReportMetric(float64(held-min(held, before))/(1<<20), "heap-MB")
			b.ReportMetric(float64(inputHeap)/(1<<20), "input-heap-MB")
			b.ReportMetric(float64(held-min(held, before+inputHeap))/(1<<20), "cache-heap-MB")
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

// BenchmarkPolicyEventUnrelated shows that one policy event's compile does not depend on
// the number of policies it has nothing to do with: the workload of record's pods and
// policies plus policies in namespaces without pods, 1,000, 10,000 and (with
// K3SNET_SCALE_MAX=100) 100,000 in all; the event adds a policy selecting local pods.
func BenchmarkPolicyEventUnrelated(b *testing.B) {
	for _, total := range []int{1000, 10000, 100000} {
		if total > 1000*scaleMax() {
			continue
		}
		b.Run(fmt.Sprintf("policies-%d", total), func(b *testing.B) {
			in := workloadInput(50, 100, 5000, 100, 1000)
			for i := len(in.Policies); i < total; i++ {
				np := in.Policies[i%1000].DeepCopy()
				np.Namespace, np.Name = fmt.Sprintf("empty-%d", i%1000), fmt.Sprintf("pol-%d", i)
				in.Policies = append(in.Policies, np)
			}
			cache := newCompileCache()
			st, err := cache.compile(in)
			require.NoError(b, err)
			next := in
			np := in.Policies[1].DeepCopy()
			np.Name = "pol-new"
			next.Policies = append(slices.Clone(in.Policies), np)
			var c cost
			for b.Loop() {
				c = fastest(func() cost {
					c := measure(func() {
						got, err := cache.compile(next)
						require.NoError(b, err)
						_ = reflect.DeepEqual(got, st)
					})
					_, err := cache.compile(in)
					require.NoError(b, err)
					return c
				})
			}
			c.report(b, "policy-event")
		})
	}
}

// cost is the wall and CPU time of one measured run.
type cost struct{ wall, cpu time.Duration }

// eventRuns is how many times an event is measured; the fastest run is reported.
const eventRuns = 5

// fastest returns the run of f with the least CPU time among eventRuns.
func fastest(f func() cost) cost {
	best := f()
	for range eventRuns - 1 {
		if c := f(); c.cpu < best.cpu {
			best = c
		}
	}
	return best
}

// measure runs f and returns its wall time and the process's CPU time meanwhile.
func measure(f func()) cost {
	cpu0, start := processCPU(), time.Now()
	f()
	return cost{wall: time.Since(start), cpu: processCPU() - cpu0}
}

// report reports c as name-ms and name-cpu-ms.
func (c cost) report(b *testing.B, name string) {
	b.ReportMetric(c.wall.Seconds()*1000, name+"-ms")
	b.ReportMetric(c.cpu.Seconds()*1000, name+"-cpu-ms")
}

// processCPU returns the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
