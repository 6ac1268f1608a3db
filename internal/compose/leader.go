package compose

import (
	"context"

	"k8s.io/client-go/kubernetes"

	"github.com/k3snet/k3snet/leader"
)

// Lease timings of every cluster-wide controller (package leader's, kube-controller-manager's
// defaults).
const (
	LeaseDuration = leader.LeaseDuration
	RenewDeadline = leader.RenewDeadline
	RetryPeriod   = leader.RetryPeriod
)

// FailedStartBackoff is how long an instance whose controller failed to start waits before
// it competes for that controller's Lease again.
const FailedStartBackoff = leader.FailedStartBackoff

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

// LeaderIdentity names this process in the Leases it holds (leader.Identity).
func LeaderIdentity(podName string) string { return leader.Identity(podName) }

// RunAsLeader runs start under the Lease k3snet-<name> (leader.Run), reporting its state to
// status under name. It returns when ctx ends.
func RunAsLeader(ctx context.Context, client kubernetes.Interface, leases Leases, name string, status *Readiness, start func(context.Context) error) {
	lease := leader.Lease{Namespace: leases.Namespace, Name: LeasePrefix + name, Identity: leases.Identity}
	leader.Run(ctx, client, lease, start, func(err error) { status.Set(name, err) })
}
