package compose

import (
	"context"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// UninstallPollInterval is how often running controllers look for an uninstall.
const UninstallPollInterval = 2 * time.Second

// WatchUninstall calls stop once self or its namespace is being deleted, and returns then or
// when ctx ends. Controllers that stop at once, rather than at their pod's SIGTERM, cannot take
// back a Lease another replica released and put back what that replica's uninstall removed.
func WatchUninstall(ctx context.Context, client kubernetes.Interface, self ServiceAccountRef, stop func()) {
	if !self.IsSet() {
		return
	}
	_ = wait.PollUntilContextCancel(ctx, UninstallPollInterval, true, func(ctx context.Context) (bool, error) {
		sa, err := client.CoreV1().ServiceAccounts(self.Namespace).Get(ctx, self.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return false, nil // an API error is not an uninstall; ask again
		}
		if apierrors.IsNotFound(err) {
			sa = nil
		}
		ns, err := client.CoreV1().Namespaces().Get(ctx, self.Namespace, metav1.GetOptions{})
		if err != nil {
			ns = nil
		}
		if UninstallRequested(sa, ns) {
			klog.FromContext(ctx).Info("Own ServiceAccount or namespace is being deleted: stopping the controllers", "serviceAccount", self)
			stop()
			return true, nil
		}
		return false, nil
	})
}

// WaitForLeasesReleased waits, at most timeout, until no instance holds one of the
// controllers' Leases in namespace: every replica has stopped its controllers, so nothing puts
// back what the uninstall is about to remove.
func WaitForLeasesReleased(ctx context.Context, client kubernetes.Interface, namespace string, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		leases, err := client.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		now := time.Now()
		for _, l := range leases.Items {
			if strings.HasPrefix(l.Name, LeasePrefix) && leaseHeld(l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.LeaseDurationSeconds, now) {
				return false, nil
			}
		}
		return true, nil
	})
}

// leaseHeld reports whether a Lease has a holder whose term has not run out: a released Lease
// has no holder, and a crashed holder's term ends LeaseDurationSeconds after its last renewal.
func leaseHeld(holder *string, renewed *metav1.MicroTime, durationSeconds *int32, now time.Time) bool {
	if holder == nil || *holder == "" || renewed == nil {
		return false
	}
	d := LeaseDuration
	if durationSeconds != nil {
		d = time.Duration(*durationSeconds) * time.Second
	}
	return now.Before(renewed.Add(d))
}
