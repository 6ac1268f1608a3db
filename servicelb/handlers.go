package servicelb

import (
	"fmt"
	"maps"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// handleService enqueues a Service that is ours to serve or to clean up. Deletions of every
// Service are enqueued: sync then removes whatever DaemonSet is left for it.
func (c *Controller) handleService(obj any) {
	svc, ok := unwrap(obj).(*corev1.Service)
	if !ok {
		return
	}
	if _, deleted := obj.(cache.DeletedFinalStateUnknown); deleted || c.interested(svc) {
		c.queue.Add(cache.MetaObjectToName(svc))
	}
}

func (c *Controller) handleServiceUpdate(old, cur any) {
	o, ok1 := old.(*corev1.Service)
	n, ok2 := cur.(*corev1.Service)
	// A resync delivers the same object again; it changes no answer (SC NewController).
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion {
		return
	}
	// serves(old) covers a Service that stops being ours, e.g. its type changed.
	if c.interested(o) || c.interested(n) {
		c.queue.Add(cache.MetaObjectToName(n))
	}
}

// interested reports whether svc is served, or carries a finalizer this controller removes.
func (c *Controller) interested(svc *corev1.Service) bool {
	return serves(svc, c.opts.LoadBalancerClass) ||
		slices.Contains(svc.Finalizers, LoadBalancerCleanupFinalizer) ||
		slices.Contains(svc.Finalizers, c.keys.LegacyFinalizer)
}

// handleNodeUpdate requeues every served Service when a node changes in a way that can change
// a DaemonSet or a status: labels (enablelb in both directions, K3s #14625; lbpool), addresses
// (K3s #7036), taints, or the start of its deletion. Heartbeats change none of these.
func (c *Controller) handleNodeUpdate(old, cur any) {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := cur.(*corev1.Node)
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion {
		return
	}
	if !maps.Equal(o.Labels, n.Labels) ||
		!slices.Equal(o.Status.Addresses, n.Status.Addresses) ||
		!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) {
		c.enqueueAllServices()
	}
}

// enqueueAllServices enqueues every served Service: allow-list mode and node addresses are
// cluster-wide facts every Service's DaemonSet or status depends on.
func (c *Controller) enqueueAllServices() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("listing Services from the cache: %w", err))
		return
	}
	for _, svc := range svcs {
		if serves(svc, c.opts.LoadBalancerClass) {
			c.queue.Add(cache.MetaObjectToName(svc))
		}
	}
}

// handleEndpointSlice enqueues the Service of an EndpointSlice when its status reads
// EndpointSlices, which only ETP Local Services do. Classed Services are skipped:
// K3s's status worker is enqueued for them and overwrites their status.
func (c *Controller) handleEndpointSlice(obj any) {
	es, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	svc, err := c.services.Services(es.Namespace).Get(name)
	if err != nil || !serves(svc, c.opts.LoadBalancerClass) ||
		svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		return
	}
	c.queue.Add(cache.MetaObjectToName(svc))
}

func (c *Controller) handleEndpointSliceUpdate(old, cur any) {
	if o, ok := old.(*discoveryv1.EndpointSlice); ok {
		if n, ok := cur.(*discoveryv1.EndpointSlice); ok && o.ResourceVersion == n.ResourceVersion {
			return
		}
	}
	c.handleEndpointSlice(cur)
}

// handleOwned maps an LB pod or DaemonSet to its Service through the svcname and svcnamespace
// labels: the Service lives in another namespace, so there is no owner reference.
func (c *Controller) handleOwned(obj any) {
	meta, ok := unwrap(obj).(metav1.Object)
	if !ok {
		return
	}
	name, ns := meta.GetLabels()[c.keys.SvcName], meta.GetLabels()[c.keys.SvcNamespace]
	if name == "" || ns == "" {
		return
	}
	c.queue.Add(cache.ObjectName{Namespace: ns, Name: name})
}

// handlePod enqueues the Service of an LB pod after podBatchDelay.
func (c *Controller) handlePod(obj any) {
	pod, ok := unwrap(obj).(*corev1.Pod)
	if !ok {
		return
	}
	name, ns := pod.Labels[c.keys.SvcName], pod.Labels[c.keys.SvcNamespace]
	if name == "" || ns == "" {
		return
	}
	c.queue.AddAfter(cache.ObjectName{Namespace: ns, Name: name}, podBatchDelay)
}

func (c *Controller) handlePodAdd(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok {
		c.warnSysctlForbidden(nil, pod)
	}
	c.handlePod(obj)
}

func (c *Controller) handlePodUpdate(old, cur any) {
	o, ok1 := old.(*corev1.Pod)
	n, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion {
		return
	}
	c.warnSysctlForbidden(o, n)
	c.handlePod(cur)
}

// warnSysctlForbidden emits a Warning on the Service of an LB pod its kubelet has just
// rejected for the forwarding sysctls. It runs on the pod event rather than in sync: the
// DaemonSet controller deletes a failed pod at once, so a sync may never see it, and the
// Service would stay Pending with nothing said.
func (c *Controller) warnSysctlForbidden(old, cur *corev1.Pod) {
	if !newlySysctlForbidden(old, cur) {
		return
	}
	name, ns := cur.Labels[c.keys.SvcName], cur.Labels[c.keys.SvcNamespace]
	if name == "" || ns == "" {
		return
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil || !serves(svc, c.opts.LoadBalancerClass) {
		return
	}
	c.recorder.Event(svc, corev1.EventTypeWarning, ReasonSysctlForbidden, sysctlForbiddenMessage(cur))
}

// handlePodDelete enqueues the pod's Service, and every Service waiting for a node: the
// deleted pod may have held the host port they need.
func (c *Controller) handlePodDelete(obj any) {
	c.handlePod(obj)
	c.mu.Lock()
	waiting := slices.Collect(maps.Keys(c.warned))
	c.mu.Unlock()
	for _, key := range waiting {
		c.queue.Add(key)
	}
}

// handleDaemonSetDelete forgets our last apply of the DaemonSet, which the cache no longer
// shows for a reason of its own, and enqueues its Service.
func (c *Controller) handleDaemonSetDelete(obj any) {
	if meta, ok := unwrap(obj).(metav1.Object); ok {
		c.applied.forget(cache.ObjectName{Namespace: meta.GetNamespace(), Name: meta.GetName()})
	}
	c.handleOwned(obj)
}

// handleDaemonSetUpdate enqueues the Service when its DaemonSet's spec or labels changed, so
// an edit by someone else is reverted; status-only updates (pod counts) are skipped.
func (c *Controller) handleDaemonSetUpdate(old, cur any) {
	o, ok1 := old.(*appsv1.DaemonSet)
	n, ok2 := cur.(*appsv1.DaemonSet)
	if !ok1 || !ok2 || (o.Generation == n.Generation && maps.Equal(o.Labels, n.Labels)) {
		return
	}
	c.handleOwned(cur)
}

// unwrap returns the last known object of a deletion the informer missed.
func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
