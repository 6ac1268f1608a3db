package clustercidr

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/k3snet/k3snet/internal/workloop"
)

// enqueueNode queues the node's name; it is the add and delete handler.
func (c *Controller) enqueueNode(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		c.nodeQueue.Add(cache.MetaObjectToName(n))
	}
}

// handleNodeUpdate queues a node when its pod CIDRs or labels changed: the pod CIDRs are what
// the allocator must hold, and labels decide which ClusterCIDR a waiting node may use. Status
// heartbeats and resyncs are dropped.
func (c *Controller) handleNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	cur, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if old.Spec.PodCIDR == cur.Spec.PodCIDR && slices.Equal(old.Spec.PodCIDRs, cur.Spec.PodCIDRs) &&
		labels.Equals(old.Labels, cur.Labels) {
		return
	}
	c.nodeQueue.Add(cache.MetaObjectToName(cur))
}

// enqueueClusterCIDR queues the ClusterCIDR's name; it is the add and delete handler.
func (c *Controller) enqueueClusterCIDR(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		c.ccQueue.Add(cache.ObjectName{Name: u.GetName()})
	}
}

// handleClusterCIDRUpdate drops resyncs and queues real changes (deletion, finalizers).
func (c *Controller) handleClusterCIDRUpdate(oldObj, newObj any) {
	cur, ok := newObj.(*unstructured.Unstructured)
	if !ok || workloop.IsResync(oldObj, newObj) {
		return
	}
	c.ccQueue.Add(cache.ObjectName{Name: cur.GetName()})
}
