package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// leaseNamespace holds one Lease per cluster-wide controller, as K3s keeps its controllers'
// leases in kube-system.
const leaseNamespace = "kube-system"

// runAsLeader runs start whenever this instance holds the Lease k3snet-<name>, with a context
// that ends when the lease is lost, and releases the lease when ctx ends so another server
// takes over at once. It returns when ctx ends.
func runAsLeader(ctx context.Context, client kubernetes.Interface, name string, status *readiness, start func(context.Context) error) {
	logger := klog.FromContext(ctx).WithValues("controller", name)
	host, _ := os.Hostname()
	identity := fmt.Sprintf("%s_%d", host, os.Getpid())
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor("k3snet-"+name, leaseNamespace),
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	// Waiting for the lease is what a standby should do, so it counts as ready.
	status.set(name, nil)
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   15 * time.Second,
			RenewDeadline:   10 * time.Second,
			RetryPeriod:     2 * time.Second,
			ReleaseOnCancel: true,
			Name:            name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					logger.Info("Leading")
					status.set(name, errors.New("starting"))
					status.set(name, start(klog.NewContext(ctx, logger)))
				},
				OnStoppedLeading: func() {
					logger.Info("Stopped leading")
					status.set(name, nil)
				},
			},
		})
	}
}
