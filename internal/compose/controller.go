package compose

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/leader"
)

// Controller is one controller of a binary: cluster-wide ones run under a Lease of their own,
// node-local ones on every instance. Start builds a new instance at every call, since a
// controller is started once and a binary may lead several terms.
type Controller struct {
	Name        string
	ClusterWide bool
	Start       func(context.Context, informers.SharedInformerFactory) error
	// PodFields, for a controller that reads Pods from the shared factory, copies of a Pod
	// only what it reads; ReadsNoPods says it reads none. When one controller of a process
	// reads Pods and says what of them, and every other says it reads none, the Pod cache
	// keeps those copies (podCacheTransform).
	PodFields   func(*corev1.Pod) *corev1.Pod
	ReadsNoPods bool
}

// RunControllers starts every controller on one shared informer factory and returns a
// function that waits, once ctx has ended, until they have stopped and released their Leases:
// a binary that exits before the release leaves its peers waiting out the lease duration.
func RunControllers(ctx context.Context, client kubernetes.Interface, leases Leases, controllers []Controller, status *Readiness) (wait func()) {
	// Controllers start the factory with their own context, which under leader election ends
	// with the term: the scoped factory keeps the caches for the next term.
	factory := leader.ScopedFactory(informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(cacheTransform(controllers))), ctx.Done())
	var running sync.WaitGroup
	for _, c := range controllers {
		if c.ClusterWide {
			running.Go(func() {
				RunAsLeader(ctx, client, leases, c.Name, status, func(ctx context.Context) error { return c.Start(ctx, factory) })
			})
			continue
		}
		go func() { status.Set(c.Name, c.Start(ctx, factory)) }()
	}
	return running.Wait
}

// ShutdownTimeout bounds the wait for the controllers to release their Leases at shutdown, so
// an unreachable API server cannot hold the process.
const ShutdownTimeout = 10 * time.Second

// AwaitStopped calls wait, the function RunControllers returned, for at most ShutdownTimeout;
// Leases not released by then expire on their own.
func AwaitStopped(ctx context.Context, wait func()) {
	released := make(chan struct{})
	go func() { wait(); close(released) }()
	select {
	case <-released:
	case <-time.After(ShutdownTimeout):
		klog.FromContext(ctx).Info("Controllers did not stop in time; their Leases expire on their own", "timeout", ShutdownTimeout)
	}
}

// RunWithHealth serves /healthz, /readyz and /metrics on metricsAddr for controllers, each
// not ready until it has started, then runs them as RunControllers does.
func RunWithHealth(ctx context.Context, client kubernetes.Interface, leases Leases, controllers []Controller, metricsAddr string, reg *ControllerMetrics) (wait func(), err error) {
	names := make([]string, 0, len(controllers))
	for _, c := range controllers {
		names = append(names, c.Name)
	}
	status := NewReadiness(names...)
	if err := ServeHealth(ctx, metricsAddr, status, reg); err != nil {
		return nil, err
	}
	return RunControllers(ctx, client, leases, controllers, status), nil
}
