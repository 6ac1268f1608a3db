package servicelb

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/internal/procstat"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// BenchmarkEndToEnd creates LoadBalancer Services on distinct ports over kwok nodes and
// measures the time until every Service publishes every node's address, and the controller's
// writes per Service on the way by kind (finalizer, DaemonSet, status patches, Events), and
// the CPU time and peak heap of this process, which runs the controller but not the control
// plane. A status grows in as few writes as the pods' pace allows (see statusSettleWindow);
// K3s writes one per pod that becomes ready. One op is the whole run.
//
// The 200 x 20 case (4,000 LB pods) is the workload of record; the smaller ones show how the
// figures scale.
func BenchmarkEndToEnd(b *testing.B) {
	for _, size := range []struct{ services, nodes int }{{50, 10}, {100, 10}, {200, 20}} {
		b.Run(fmt.Sprintf("services=%d/nodes=%d", size.services, size.nodes), func(b *testing.B) {
			benchmarkEndToEnd(b, size.services, size.nodes)
		})
	}
}

func benchmarkEndToEnd(b *testing.B, services, nodes int) {
	const basePort = 20000
	h := newHarness(b, Options{})
	prefix := testcluster.UniqueName("bench")
	var ns []*corev1.Node
	want := make([]string, nodes)
	for i := range nodes {
		want[i] = fmt.Sprintf("10.90.0.%d", i+1)
		ns = append(ns, testcluster.Node(fmt.Sprintf("%s-%02d", prefix, i), testcluster.InternalIP(want[i])))
	}
	h.c.AddNodes(b, ns...)
	// A Ready node keeps the not-ready NoSchedule taint until the node-lifecycle controller
	// next looks; LB pods cannot go there before, so the run would measure that controller's
	// period and the controller would rightly warn that no node can host the Services.
	err := pollLong(b, func(ctx context.Context) (bool, error) {
		for _, n := range ns {
			node, err := h.admin.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || len(node.Spec.Taints) > 0 {
				return false, err
			}
		}
		return true, nil
	})
	require.NoError(b, err, "the nodes should lose their taints")

	for i := range b.N {
		before := h.writes.Count()
		stopHeap := procstat.SamplePeakHeap(50 * time.Millisecond)
		cpuBefore := procstat.SelfCPU(b)
		start := time.Now()
		names := make([]string, services)
		for s := range services {
			names[s] = fmt.Sprintf("svc-%d-%d", i, s)
			h.createService(names[s], int32(basePort+s))
		}
		err := pollLong(b, func(ctx context.Context) (bool, error) {
			svcs, err := h.admin.CoreV1().Services(h.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			done := 0
			for _, svc := range svcs.Items {
				if len(svc.Status.LoadBalancer.Ingress) == nodes {
					done++
				}
			}
			return done == services, nil
		})
		if err != nil {
			logStall(b, h, nodes)
		}
		require.NoError(b, err, "every Service should publish %d addresses", nodes)
		elapsed := time.Since(start)
		b.ReportMetric(elapsed.Seconds(), "s/all-statuses")
		writes := h.writes.Since(before)
		b.ReportMetric(float64(len(writes))/float64(services), "writes/svc")
		b.ReportMetric((procstat.SelfCPU(b) - cpuBefore).Seconds(), "cpu-s")
		b.ReportMetric(float64(stopHeap())/(1<<20), "peak-heap-MiB")
		for _, c := range classifyWrites(writes) {
			b.ReportMetric(float64(c.n)/float64(services), c.what+"/svc")
		}
		// When each kind of write last happened tells whether the controller's queue or the
		// pods' lifecycle sets the pace.
		last := map[string]time.Duration{}
		for j, at := range h.writes.TimesSince(before)[:len(writes)] {
			last[classifyWrites(writes[j : j+1])[0].what] = at.Sub(start)
		}
		b.Logf("last write of each kind after: %v", last)
		// The pods' own timeline: if the last LB pod is created long after the last apply, the
		// DaemonSet controller's pace (its client's QPS), not ours, sets the time to all statuses.
		if pods, err := h.admin.CoreV1().Pods(h.lbNS).List(b.Context(), metav1.ListOptions{}); err == nil {
			var lastCreated, lastReady time.Time
			for _, p := range pods.Items {
				lastCreated = later(lastCreated, p.CreationTimestamp.Time)
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
						lastReady = later(lastReady, c.LastTransitionTime.Time)
					}
				}
			}
			b.Logf("%d LB pods, last created after %v, last ready after %v (1 s resolution)",
				len(pods.Items), lastCreated.Sub(start).Round(time.Second), lastReady.Sub(start).Round(time.Second))
		}
		if evs, err := h.admin.CoreV1().Events(h.ns).List(b.Context(), metav1.ListOptions{}); err == nil {
			reasons := map[string]int32{}
			var steps []string // status changes that were not the first publication
			for _, ev := range evs.Items {
				reasons[ev.Reason] += ev.Count
				if ev.Reason == ReasonUpdatedLoadBalancer && !strings.Contains(ev.Message, "[] -> ") {
					steps = append(steps, ev.InvolvedObject.Name+": "+ev.Message)
				}
			}
			b.Logf("events by reason: %v", reasons)
			if len(steps) > 0 {
				b.Logf("%d later status changes, e.g. %q", len(steps), steps[:min(3, len(steps))])
			}
		}
		if load, err := os.ReadFile("/proc/loadavg"); err == nil {
			b.Logf("load average: %s", strings.TrimSpace(string(load)))
		}

		b.StopTimer()
		for _, name := range names {
			require.NoError(b, h.admin.CoreV1().Services(h.ns).Delete(b.Context(), name, metav1.DeleteOptions{}))
		}
		err = pollLong(b, func(ctx context.Context) (bool, error) {
			dss, err := h.admin.AppsV1().DaemonSets(h.lbNS).List(ctx, metav1.ListOptions{})
			return err == nil && len(dss.Items) == 0, err
		})
		require.NoError(b, err, "every DaemonSet should be deleted")
		b.StartTimer()
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// writeClass is one kind of write and how many were seen.
type writeClass struct {
	what string
	n    int
}

// classifyWrites counts writes by what they do, from the verb, the path and the content type
// the write counter records: the controller's goal is one apply and one status patch per
// Service, and this tells which other writes there are.
func classifyWrites(writes []string) []writeClass {
	counts := map[string]int{}
	for _, w := range writes {
		method, rest, _ := strings.Cut(w, " ")
		path, ctype, _ := strings.Cut(rest, " ")
		var what string
		switch {
		case strings.Contains(path, "/events"):
			what = "event-" + strings.ToLower(method)
		case strings.HasSuffix(path, "/status") && strings.Contains(path, "/services/"):
			what = "svc-status-patch"
		case strings.Contains(path, "/services/"):
			what = "svc-finalizer-" + strings.ToLower(method)
		case strings.Contains(path, "/daemonsets/") && ctype == "application/apply-patch+yaml":
			what = "ds-apply"
		case strings.Contains(path, "/daemonsets/") && method == "PATCH":
			what = "ds-merge-patch"
		case strings.Contains(path, "/daemonsets/"):
			what = "ds-" + strings.ToLower(method)
		default:
			what = "other-" + strings.ToLower(method)
		}
		counts[what]++
	}
	out := make([]writeClass, 0, len(counts))
	for what, n := range counts {
		out = append(out, writeClass{what, n})
	}
	slices.SortFunc(out, func(a, b writeClass) int { return strings.Compare(a.what, b.what) })
	return out
}

// pollLong polls cond for up to ten minutes: 4,000 LB pods take the scheduler and kwok a while.
func pollLong(b *testing.B, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// logStall says where a run that did not finish stands: how many addresses the Services
// publish, what state the LB pods are in, and how many nodes are not Ready, which tells a
// slow controller from a control plane or kwok that fell behind.
func logStall(b *testing.B, h *harness, nodes int) {
	ctx := context.Background()
	if svcs, err := h.admin.CoreV1().Services(h.ns).List(ctx, metav1.ListOptions{}); err == nil {
		published := map[int]int{}
		for _, svc := range svcs.Items {
			published[len(svc.Status.LoadBalancer.Ingress)]++
		}
		b.Logf("Services by number of published addresses (want %d): %v", nodes, published)
	}
	if pods, err := h.admin.CoreV1().Pods(h.lbNS).List(ctx, metav1.ListOptions{}); err == nil {
		states := map[string]int{}
		for _, p := range pods.Items {
			state := string(p.Status.Phase)
			switch {
			case p.DeletionTimestamp != nil:
				state = "Terminating"
			case p.Spec.NodeName == "":
				state = "Unscheduled"
			case testcluster.PodReady(&p):
				state = "Ready"
			}
			states[state]++
		}
		b.Logf("LB pods by state: %v", states)
	}
	if ns, err := h.admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		notReady := 0
		for _, n := range ns.Items {
			if !testcluster.NodeReady(&n) {
				notReady++
			}
		}
		b.Logf("%d of %d nodes not Ready", notReady, len(ns.Items))
	}
}
