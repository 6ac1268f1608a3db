package servicelb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Cleanup removes what ServiceLB left in namespace ("" is DefaultNamespace) under K3s's
// keys: what a server started with --disable=servicelb does. See CleanupProgram.
func Cleanup(ctx context.Context, client kubernetes.Interface, namespace string) error {
	return CleanupProgram(ctx, client, namespace, DefaultProgram)
}

// CleanupProgram deletes every LB DaemonSet in namespace, found as K3s finds them by the
// existence of the nodeselector label built from program, and is idempotent.
//
// Unlike K3s it also removes the cleanup finalizer (and the legacy one) from each Service whose
// DaemonSet it deletes: with ServiceLB disabled nothing else releases it, and deleting such a
// Service would hang. It does so before deleting the DaemonSet, so a failed run leaves the
// DaemonSet for the next run to find. The Services' status is left alone: the next load
// balancer implementation overwrites it, and until then the addresses may still work.
func CleanupProgram(ctx context.Context, client kubernetes.Interface, namespace, program string) error {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	keys := NewKeys(program)
	logger := klog.FromContext(ctx)
	dss, err := client.AppsV1().DaemonSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: keys.NodeSelector})
	if err != nil {
		return fmt.Errorf("servicelb: listing LB DaemonSets in %s: %w", namespace, err)
	}
	var errs []error
	for _, ds := range dss.Items {
		name, ns := ds.Labels[keys.SvcName], ds.Labels[keys.SvcNamespace]
		if name != "" && ns != "" {
			if err := releaseService(ctx, client, ns, name, keys); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		err := client.AppsV1().DaemonSets(namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("servicelb: deleting DaemonSet %s/%s: %w", namespace, ds.Name, err))
			continue
		}
		logger.Info("Deleted LB DaemonSet", "daemonSet", klog.KObj(&ds))
	}
	return errors.Join(errs...)
}

// releaseService removes ServiceLB's finalizers from the Service ns/name, if it still exists.
func releaseService(ctx context.Context, client kubernetes.Interface, ns, name string, keys Keys) error {
	svc, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("servicelb: getting Service %s/%s: %w", ns, name, err)
	}
	want := slices.DeleteFunc(slices.Clone(svc.Finalizers), func(f string) bool {
		return f == LoadBalancerCleanupFinalizer || f == keys.LegacyFinalizer
	})
	if len(want) == len(svc.Finalizers) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": want, "resourceVersion": svc.ResourceVersion,
	}})
	if err != nil {
		return fmt.Errorf("servicelb: encoding finalizers of Service %s/%s: %w", ns, name, err)
	}
	_, err = client.CoreV1().Services(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("servicelb: removing finalizers of Service %s/%s: %w", ns, name, err)
	}
	return nil
}
