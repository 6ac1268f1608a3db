package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// Lease timings of every cluster-wide controller, kube-controller-manager's defaults: a
// leader that dies without releasing its Lease is replaced within LeaseDuration.
const (
	LeaseDuration = 15 * time.Second
	RenewDeadline = 10 * time.Second
	RetryPeriod   = 2 * time.Second
)

// FailedStartBackoff is how long an instance whose controller failed to start waits before
// it competes for that controller's Lease again.
const FailedStartBackoff = 10 * time.Second

// LeasePrefix starts the name of every controller's Lease: k3snet-<controller>.
const LeasePrefix = "k3snet-"

// Leases says where an instance takes the Leases of its cluster-wide controllers and under
// which name.
type Leases struct {
	// Namespace holds one Lease per cluster-wide controller.
	Namespace string
	// Identity names this instance in the Leases it holds; see LeaderIdentity.
	Identity string
}

// LeaderIdentity names this process in the Leases it holds: podName (else the host) and the
// process, as kube-controller-manager does. Replicas of a hostNetwork pod on one node share
// the host name and often the process id, so a pod passes its name.
func LeaderIdentity(podName string) string {
	if podName == "" {
		podName, _ = os.Hostname()
	}
	return fmt.Sprintf("%s_%d", podName, os.Getpid())
}

// RunAsLeader runs start whenever this instance holds the Lease k3snet-<name>, with a context
// that ends when the lease is lost, and releases the lease when ctx ends so another instance
// takes over at once. A start that fails releases the Lease too, and this instance competes
// again after FailedStartBackoff. It returns when ctx ends.
func RunAsLeader(ctx context.Context, client kubernetes.Interface, leases Leases, name string, status *Readiness, start func(context.Context) error) {
	logger := klog.FromContext(ctx).WithValues("controller", name)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: LeasePrefix + name, Namespace: leases.Namespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: leases.Identity},
	}
	// Waiting for the lease is what a standby should do, so it counts as ready.
	status.Set(name, nil)
	// failed is set by the leading goroutine and read by RunOrDie's caller.
	var failed atomic.Bool
	for ctx.Err() == nil {
		term, endTerm := context.WithCancel(ctx)
		leaderelection.RunOrDie(term, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   LeaseDuration,
			RenewDeadline:   RenewDeadline,
			RetryPeriod:     RetryPeriod,
			ReleaseOnCancel: true,
			Name:            name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					logger.Info("Leading")
					status.Set(name, errors.New("starting"))
					err := start(klog.NewContext(ctx, logger))
					status.Set(name, err)
					failed.Store(err != nil)
					if err != nil {
						// A leader that cannot run its controller hands the Lease to an
						// instance that may.
						logger.Error(err, "Starting the controller failed; releasing the Lease")
						endTerm()
					}
				},
				OnStoppedLeading: func() {
					logger.Info("Stopped leading")
					if !failed.Load() {
						status.Set(name, nil)
					}
				},
			},
		})
		endTerm()
		if failed.Load() {
			// Give a peer the first chance at the Lease before trying again.
			select {
			case <-ctx.Done():
			case <-time.After(FailedStartBackoff):
			}
		}
	}
}
