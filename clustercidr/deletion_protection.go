package clustercidr

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
)

// syncClusterCIDR makes the allocator and the finalizer follow a ClusterCIDR object: a live
// one is added and guarded by Finalizer; a deleted one hands out nothing more and keeps the
// finalizer while Nodes hold blocks from it (deletion protection, as upstream's allocator).
func (c *Controller) syncClusterCIDR(ctx context.Context, name string) error {
	logger := klog.FromContext(ctx).WithValues("clusterCIDR", name)
	obj, err := c.ccs.Get(name)
	if apierrors.IsNotFound(err) {
		// Gone without our finalizer (removed by hand): its nodes keep their blocks.
		if nodes := c.allocator().DeleteClusterCIDR(name); len(nodes) > 0 {
			logger.Info("ClusterCIDR deleted while Nodes use it", "nodes", nodes)
		}
		return nil
	}
	if err != nil {
		return err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fmt.Errorf("ClusterCIDR %s: unexpected type %T", name, obj)
	}
	if u.GetDeletionTimestamp() != nil {
		if !slices.Contains(u.GetFinalizers(), Finalizer) {
			c.allocator().DeleteClusterCIDR(name)
			return nil
		}
		if nodes := c.allocator().DeleteClusterCIDR(name); len(nodes) > 0 {
			shown := nodes[:min(len(nodes), maxNodesInEvent)]
			more := ""
			if len(nodes) > len(shown) {
				more = fmt.Sprintf(" and %d more", len(nodes)-len(shown))
			}
			c.recorder.Eventf(u, corev1.EventTypeWarning, ReasonClusterCIDRInUse,
				"ClusterCIDR %s is terminating; it stays until no Node uses it: %s%s", name, strings.Join(shown, ", "), more)
			return nil
		}
		logger.V(2).Info("Removing the finalizer of a deleted ClusterCIDR")
		return setFinalizer(ctx, c.opts.Dynamic, u, false)
	}
	spec, err := specFromObject(u)
	if err == nil {
		err = c.allocator().AddClusterCIDR(name, spec)
	}
	if err != nil {
		c.recorder.Event(u, corev1.EventTypeWarning, ReasonInvalidClusterCIDR, err.Error())
		return nil
	}
	// New capacity: nodes that waited may fit now.
	c.requeueWaiting()
	return setFinalizer(ctx, c.opts.Dynamic, u, true)
}
