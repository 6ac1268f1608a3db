package servicelb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/internal/testcluster"
)

// BenchmarkEndToEnd creates LoadBalancer Services on distinct ports over kwok nodes and
// measures the time until every Service publishes every node's address, and the controller's
// writes per Service on the way (finalizer, DaemonSet, status patches, Events). Each status
// change as LB pods become ready one by one is a write, as in K3s. One op is the whole run.
//
// The 200 x 20 case is the workload of record; on a busy 2-core machine its 4,000 pods can
// starve kwok's node heartbeats, the nodes turn NotReady and the addresses come and go, so the
// smaller case is there to measure the controller rather than the machine.
func BenchmarkEndToEnd(b *testing.B) {
	for _, size := range []struct{ services, nodes int }{{50, 10}, {200, 20}} {
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

	for i := range b.N {
		before := h.writes.count()
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
		require.NoError(b, err, "every Service should publish %d addresses", nodes)
		elapsed := time.Since(start)
		b.ReportMetric(elapsed.Seconds(), "s/all-statuses")
		b.ReportMetric(float64(h.writes.count()-before)/float64(services), "writes/svc")

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
