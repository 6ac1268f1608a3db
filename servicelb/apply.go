package servicelb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// daemonSetUpToDate reports whether live already has every field newDaemonSet renders in want,
// so the controller applies only when something differs and a resync writes nothing (syncs are
// idempotent). It compares the rendered fields only: the API server defaults many others
// (terminationMessagePath, dnsPolicy, maxSurge, ...), which a whole-object comparison would
// always find different. Maps we render are compared as subsets, except the node selector,
// whose extra entries are exactly the stale allow-list K3s never removes (K3s #14625).
func daemonSetUpToDate(live, want *appsv1.DaemonSet) bool {
	if !subset(want.Labels, live.Labels) ||
		!equality.Semantic.DeepEqual(live.Spec.Selector, want.Spec.Selector) ||
		live.Spec.UpdateStrategy.Type != want.Spec.UpdateStrategy.Type {
		return false
	}
	if w := want.Spec.UpdateStrategy.RollingUpdate; w != nil {
		l := live.Spec.UpdateStrategy.RollingUpdate
		if l == nil || !equality.Semantic.DeepEqual(l.MaxUnavailable, w.MaxUnavailable) {
			return false
		}
	}
	lt, wt := &live.Spec.Template, &want.Spec.Template
	if !subset(wt.Labels, lt.Labels) {
		return false
	}
	ls, ws := &lt.Spec, &wt.Spec
	if ls.PriorityClassName != ws.PriorityClassName ||
		ls.ServiceAccountName != ws.ServiceAccountName ||
		!equality.Semantic.DeepEqual(ls.AutomountServiceAccountToken, ws.AutomountServiceAccountToken) ||
		!equality.Semantic.DeepEqual(sysctls(ls.SecurityContext), sysctls(ws.SecurityContext)) ||
		!equality.Semantic.DeepEqual(ls.Tolerations, ws.Tolerations) ||
		!equality.Semantic.DeepEqual(ls.NodeSelector, ws.NodeSelector) ||
		!equality.Semantic.DeepEqual(ls.Affinity, ws.Affinity) ||
		len(ls.Containers) != len(ws.Containers) {
		return false
	}
	for i := range ws.Containers {
		if !containerUpToDate(&ls.Containers[i], &ws.Containers[i]) {
			return false
		}
	}
	return true
}

// containerUpToDate compares the container fields containers renders.
func containerUpToDate(live, want *corev1.Container) bool {
	if live.Name != want.Name || live.Image != want.Image || live.ImagePullPolicy != want.ImagePullPolicy ||
		len(live.Ports) != len(want.Ports) ||
		!equality.Semantic.DeepEqual(live.Env, want.Env) ||
		!equality.Semantic.DeepEqual(capabilities(live.SecurityContext), capabilities(want.SecurityContext)) {
		return false
	}
	for i, w := range want.Ports {
		l := live.Ports[i]
		if l.Name != w.Name || l.ContainerPort != w.ContainerPort || l.HostPort != w.HostPort || l.Protocol != w.Protocol {
			return false
		}
	}
	return true
}

func sysctls(sc *corev1.PodSecurityContext) []corev1.Sysctl {
	if sc == nil {
		return nil
	}
	return sc.Sysctls
}

func capabilities(sc *corev1.SecurityContext) *corev1.Capabilities {
	if sc == nil {
		return nil
	}
	return sc.Capabilities
}

// subset reports whether every entry of want is in have.
func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// applyConfiguration turns the rendered DaemonSet into the apply configuration sent with
// server-side apply. The typed object and the apply configuration share their JSON form; the
// status is dropped, since an apply request owns what it sends and the status is not ours.
// Everything newDaemonSet leaves unset stays out of the request, so the fields we stop
// rendering (a node selector after allow-list mode ends) are removed by the next apply.
func applyConfiguration(ds *appsv1.DaemonSet) (*appsv1ac.DaemonSetApplyConfiguration, error) {
	data, err := json.Marshal(ds)
	if err != nil {
		return nil, fmt.Errorf("encoding DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	ac := &appsv1ac.DaemonSetApplyConfiguration{}
	if err := json.Unmarshal(data, ac); err != nil {
		return nil, fmt.Errorf("decoding DaemonSet %s/%s as an apply configuration: %w", ds.Namespace, ds.Name, err)
	}
	ac.Status = nil
	return ac, nil
}

// applyDaemonSet applies want with server-side apply when the live DaemonSet differs from it,
// and records AppliedDaemonSet once the write succeeded (Events follow successful writes; K3s emits it even when the
// apply fails).
func (c *Controller) applyDaemonSet(ctx context.Context, svc *corev1.Service, want *appsv1.DaemonSet) error {
	key := cache.ObjectName{Namespace: want.Namespace, Name: want.Name}
	live, err := c.daemonSets.DaemonSets(want.Namespace).Get(want.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting DaemonSet %s/%s from the cache: %w", want.Namespace, want.Name, err)
	}
	cachedVersion := ""
	if err == nil {
		cachedVersion = live.ResourceVersion
	}
	if ours, ok := c.applied.current(key, cachedVersion); ok {
		live = ours
	} else if err != nil {
		live = nil
	}
	if live != nil && daemonSetUpToDate(live, want) {
		return nil
	}
	ac, err := applyConfiguration(want)
	if err != nil {
		return err
	}
	out, err := c.client.AppsV1().DaemonSets(want.Namespace).Apply(ctx, ac,
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("applying DaemonSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	if !daemonSetUpToDate(out, want) {
		if out, err = c.dropForeignPlacement(ctx, want); err != nil {
			return err
		}
	}
	c.applied.remember(key, cachedVersion, out)
	klog.FromContext(ctx).V(2).Info("Applied DaemonSet", "daemonSet", klog.KObj(want))
	c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonAppliedDaemonSet, messageAppliedDaemonSet, want.Namespace, want.Name)
	return nil
}

// dropForeignPlacement sets the node selector and affinity of the DaemonSet's pods to what we
// render. An apply only removes the fields its manager owns; a DaemonSet that K3s created (or
// someone edited) keeps the node selector another manager set, which is how K3s's stale
// allow-list survives restarts (K3s #14625). A merge patch replaces both fields
// whoever set them; null removes them. It returns the DaemonSet as patched.
func (c *Controller) dropForeignPlacement(ctx context.Context, want *appsv1.DaemonSet) (*appsv1.DaemonSet, error) {
	spec := want.Spec.Template.Spec
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"nodeSelector": nullIfEmpty(spec.NodeSelector), "affinity": spec.Affinity,
	}}}})
	if err != nil {
		return nil, fmt.Errorf("encoding placement of DaemonSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	out, err := c.client.AppsV1().DaemonSets(want.Namespace).Patch(ctx, want.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("patching placement of DaemonSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	if !daemonSetUpToDate(out, want) {
		// Some other field is held by another manager; applying again would not help.
		klog.FromContext(ctx).Info("DaemonSet still differs from its render after apply", "daemonSet", klog.KObj(want))
	}
	return out, nil
}

// nullIfEmpty makes an empty map encode as null, which a merge patch reads as "remove".
func nullIfEmpty(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// deleteDaemonSets deletes the DaemonSets labelled with key's Service, except the one named
// keep, and records DeletedDaemonSet on svc when there is one to record it on.
func (c *Controller) deleteDaemonSets(ctx context.Context, key cache.ObjectName, svc *corev1.Service, keep string) error {
	dss, err := c.daemonSetsOf(key)
	if err != nil {
		return err
	}
	var errs []error
	for _, ds := range dss {
		if ds.Name == keep || ds.DeletionTimestamp != nil {
			continue
		}
		err := c.client.AppsV1().DaemonSets(ds.Namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{
			// The UID precondition keeps a stale cache from deleting a newer DaemonSet.
			Preconditions: &metav1.Preconditions{UID: &ds.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err))
			continue
		}
		klog.FromContext(ctx).V(2).Info("Deleted DaemonSet", "daemonSet", klog.KObj(ds))
		if svc != nil {
			c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonDeletedDaemonSet, messageDeletedDaemonSet, ds.Namespace, ds.Name)
		}
	}
	return errors.Join(errs...)
}
