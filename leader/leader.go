// Package leader runs any k3snet controller under a coordination.k8s.io Lease, as
// kube-controller-manager runs its controllers: one instance of a cluster-wide controller
// (ServiceLB with the cloud-controller stub, clustercidr, the Helm controller, NodeHosts) leads
// at a time, and another takes over within LeaseDuration when it dies, at once when it
// releases the Lease at shutdown.
//
// Every k3snet controller's Start starts the shared informer factory it is given with its own
// context. Under leader election that context ends with the term, and a factory never
// restarts an informer whose stop channel has closed, so a second term would run on dead
// caches. Run therefore hands each term a factory whose Start is bound to the process's
// context instead (ScopedFactory): the caches outlive the terms, the controller does not.
package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// Lease timings, kube-controller-manager's defaults: a leader that dies without releasing its
// Lease is replaced within LeaseDuration.
const (
	LeaseDuration = 15 * time.Second
	RenewDeadline = 10 * time.Second
	RetryPeriod   = 2 * time.Second
)

// FailedStartBackoff is how long an instance whose controller failed to start waits before
// it competes for the Lease again, so a healthy peer gets it first.
const FailedStartBackoff = 10 * time.Second

// Lease names the Lease a controller runs under and this instance in it.
type Lease struct {
	Namespace, Name string
	// Identity names this instance in the Lease; see Identity.
	Identity string
}

// Identity names this process in the Leases it holds: podName (else the host name) and the
// process id, as kube-controller-manager does. Replicas of a hostNetwork pod on one node share
// the host name and often the process id, so a pod passes its name.
func Identity(podName string) string {
	if podName == "" {
		podName, _ = os.Hostname()
	}
	return fmt.Sprintf("%s_%d", podName, os.Getpid())
}

// Run runs start whenever this instance holds lease, with a context that ends when the term
// does, and releases the Lease when ctx ends so a peer takes over at once. A start that
// returns an error ends the term and releases the Lease too, and this instance competes
// again after FailedStartBackoff. report, if not nil, hears the controller's state: nil while
// standing by or running, an error while starting and after a failed start. Run returns when
// ctx ends.
func Run(ctx context.Context, client kubernetes.Interface, lease Lease, start func(context.Context) error, report func(error)) {
	if report == nil {
		report = func(error) {}
	}
	logger := klog.FromContext(ctx).WithValues("lease", lease.Namespace+"/"+lease.Name)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: lease.Name, Namespace: lease.Namespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: lease.Identity},
	}
	// Waiting for the Lease is what a standby should do, so it counts as healthy.
	report(nil)
	// failed is set by the leading goroutine and read after RunOrDie returns.
	var failed atomic.Bool
	for ctx.Err() == nil {
		term, endTerm := context.WithCancel(ctx)
		leaderelection.RunOrDie(term, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   LeaseDuration,
			RenewDeadline:   RenewDeadline,
			RetryPeriod:     RetryPeriod,
			ReleaseOnCancel: true,
			Name:            lease.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					logger.Info("Leading")
					report(errors.New("starting"))
					err := start(klog.NewContext(ctx, logger))
					report(err)
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
						report(nil)
					}
				},
			},
		})
		endTerm()
		if failed.Load() {
			select {
			case <-ctx.Done():
			case <-time.After(FailedStartBackoff):
			}
		}
	}
}

// RunController runs a k3snet controller under lease: start is the controller's constructor
// and Start (a new instance every term, since a controller is started once), and factory is
// handed to it through ScopedFactory, bound to ctx.
func RunController(ctx context.Context, client kubernetes.Interface, lease Lease, factory informers.SharedInformerFactory,
	start func(context.Context, informers.SharedInformerFactory) error, report func(error)) {
	scoped := ScopedFactory(factory, ctx.Done())
	Run(ctx, client, lease, func(ctx context.Context) error { return start(ctx, scoped) }, report)
}

// ScopedFactory returns factory with Start bound to stop: whatever channel a controller passes
// to Start, its informers run until stop closes. Give every controller of a process the same
// scoped factory, so they share the caches across leader terms.
func ScopedFactory(factory informers.SharedInformerFactory, stop <-chan struct{}) informers.SharedInformerFactory {
	return scopedFactory{SharedInformerFactory: factory, stop: stop}
}

type scopedFactory struct {
	informers.SharedInformerFactory
	stop <-chan struct{}
}

func (f scopedFactory) Start(<-chan struct{}) { f.SharedInformerFactory.Start(f.stop) }
