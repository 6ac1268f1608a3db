package servicelb

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// cleanup undoes what serving svc did once it is deleted or no longer ours (type changed):
// DaemonSet, then status, then finalizers, in the order of the upstream service controller
// (ensure, then status, then the cleanup finalizer). A Service of another implementation keeps its status and finalizers: the
// cleanup finalizer is every cloud provider's, and the status is theirs.
func (c *Controller) cleanup(ctx context.Context, svc *corev1.Service) error {
	key := cache.MetaObjectToName(svc)
	c.forgetWarning(key)
	if err := c.deleteDaemonSets(ctx, key, svc, ""); err != nil {
		return err
	}
	if class := svc.Spec.LoadBalancerClass; class != nil && *class != "" && *class != c.opts.LoadBalancerClass {
		return nil
	}
	if slices.Contains(svc.Finalizers, LoadBalancerCleanupFinalizer) {
		var err error
		// The finalizer patch carries the resourceVersion the status patch returns.
		if svc, _, err = c.writeIngress(ctx, svc, c.storedIngress(svc), nil); err != nil {
			return err
		}
	}
	_, err := c.setFinalizers(ctx, svc, false)
	return err
}

// setFinalizers adds (serve) or removes (!serve) the cleanup finalizer, and removes K3s's
// legacy finalizer either way (K3s sweeps it at every start; we do it per Service).
// It returns the Service as written, or svc when nothing had to change.
func (c *Controller) setFinalizers(ctx context.Context, svc *corev1.Service, serve bool) (*corev1.Service, error) {
	want := slices.DeleteFunc(slices.Clone(svc.Finalizers), func(f string) bool {
		return f == c.keys.LegacyFinalizer || (!serve && f == LoadBalancerCleanupFinalizer)
	})
	if serve && !slices.Contains(want, LoadBalancerCleanupFinalizer) {
		want = append(want, LoadBalancerCleanupFinalizer)
	}
	if slices.Equal(want, svc.Finalizers) {
		return svc, nil
	}
	// A merge patch replaces the list; the resourceVersion makes it fail rather than drop a
	// finalizer someone else added meanwhile.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": want, "resourceVersion": svc.ResourceVersion,
	}})
	if err != nil {
		return nil, fmt.Errorf("encoding finalizers of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	out, err := c.client.CoreV1().Services(svc.Namespace).Patch(ctx, svc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("setting finalizers of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Set finalizers", "finalizers", want)
	return out, nil
}
