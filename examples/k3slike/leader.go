package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// leaseNamespace holds one Lease per cluster-wide controller, as K3s keeps its controllers'
// leases in kube-system.
const leaseNamespace = "kube-system"

// leaderIdentity names this server in the Leases it holds: host and process, as
// kube-controller-manager does.
func leaderIdentity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s_%d", host, os.Getpid())
}

// runAsLeader runs start whenever this instance holds the Lease k3snet-<name>, with a context
// that ends when the lease is lost, and releases the lease when ctx ends so another server
// takes over at once. A start that fails releases the Lease too, and this server competes
// again after failedStartBackoff. It returns when ctx ends.
func runAsLeader(ctx context.Context, client kubernetes.Interface, identity, name string, status *readiness, start func(context.Context) error) {
	logger := klog.FromContext(ctx).WithValues("controller", name)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor("k3snet-"+name, leaseNamespace),
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	// Waiting for the lease is what a standby should do, so it counts as ready.
	status.set(name, nil)
	// failed is set by the leading goroutine and read by RunOrDie's caller.
	var failed atomic.Bool
	for ctx.Err() == nil {
		term, endTerm := context.WithCancel(ctx)
		leaderelection.RunOrDie(term, leaderelection.LeaderElectionConfig{
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
					err := start(klog.NewContext(ctx, logger))
					status.set(name, err)
					failed.Store(err != nil)
					if err != nil {
						// A leader that cannot run its controller hands the Lease to a
						// server that may.
						logger.Error(err, "Starting the controller failed; releasing the Lease")
						endTerm()
					}
				},
				OnStoppedLeading: func() {
					logger.Info("Stopped leading")
					if !failed.Load() {
						status.set(name, nil)
					}
				},
			},
		})
		endTerm()
		if failed.Load() {
			// Give a peer the first chance at the Lease before trying again.
			select {
			case <-ctx.Done():
			case <-time.After(failedStartBackoff):
			}
		}
	}
}

// failedStartBackoff is how long a server whose controller failed to start waits before it
// competes for that controller's Lease again.
const failedStartBackoff = 10 * time.Second
