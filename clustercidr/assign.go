package clustercidr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// requeueWaiting queues every Node that is waiting for capacity.
func (c *Controller) requeueWaiting() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.waiting {
		c.nodeQueue.Add(cache.ObjectName{Name: name})
	}
}

// setWaiting records whether the node waits for capacity and reports whether it did before.
func (c *Controller) setWaiting(name string, wait bool) (was bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, was = c.waiting[name]
	if wait {
		c.waiting[name] = struct{}{}
	} else {
		delete(c.waiting, name)
	}
	return was
}

// syncNode makes the allocator and the Node agree: a gone Node's CIDRs are released, a Node
// with CIDRs has them occupied, a Node without gets a block with one patch.
func (c *Controller) syncNode(ctx context.Context, name string) error {
	logger := klog.FromContext(ctx).WithValues("node", name)
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.setWaiting(name, false)
		c.release(ctx, name)
		return nil
	}
	if err != nil {
		return err
	}
	n, err := nodeFromAPI(node)
	if err != nil {
		c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDROutsideClusterCIDRs, err.Error())
		return nil
	}
	if len(n.PodCIDRs) > 0 {
		c.setWaiting(name, false)
		c.occupy(ctx, node, n)
		return nil
	}
	return c.assign(ctx, logger, node, n)
}

// release frees a deleted Node's CIDRs, then lets waiting Nodes and a terminating
// ClusterCIDR see the freed capacity.
func (c *Controller) release(ctx context.Context, name string) {
	got, ok := c.allocator().Release(name)
	if !ok {
		return
	}
	klog.FromContext(ctx).V(2).Info("Released pod CIDRs", "node", name, "podCIDRs", got.PodCIDRs, "clusterCIDRs", got.ClusterCIDRs)
	if len(got.ClusterCIDRs) == 0 {
		c.metrics.releases.WithLabelValues("").Inc()
	}
	for _, cc := range got.ClusterCIDRs {
		c.metrics.releases.WithLabelValues(cc).Inc()
		if c.ccs != nil {
			c.ccQueue.Add(cache.ObjectName{Name: cc})
		}
	}
	c.requeueWaiting()
}

// occupy records a Node's existing CIDRs. They never change (a node that already has a CIDR
// cannot get a new one), so problems are reported, not retried.
func (c *Controller) occupy(ctx context.Context, node *corev1.Node, n Node) {
	_, err := c.allocator().Occupy(n)
	switch {
	case err == nil:
	case errors.Is(err, ErrCIDROutsideClusterCIDRs):
		// Held anyway, so nothing else gets the block; a ClusterCIDR added later adopts it.
		c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDROutsideClusterCIDRs, err.Error())
	case errors.Is(err, ErrAlreadyAllocated):
		c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDRConflict, err.Error())
	default:
		klog.FromContext(ctx).Error(err, "Occupying pod CIDRs failed", "node", klog.KObj(node))
	}
}

// assign gives a Node without CIDRs a block and writes it with one patch conditional on the
// Node's resourceVersion. On a conflict the Node is re-read from the API: if someone else set
// its CIDRs those are what the allocator holds from then on; otherwise the same block is
// retried on the fresh version.
func (c *Controller) assign(ctx context.Context, logger klog.Logger, node *corev1.Node, n Node) error {
	for range maxPatchAttempts {
		got, err := c.allocator().Allocate(n)
		if errors.Is(err, ErrNoCIDRAvailable) {
			if !c.setWaiting(n.Name, true) {
				c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDRNotAvailable, err.Error())
			}
			logger.V(2).Info("No pod CIDR available; waiting for capacity", "err", err)
			return nil
		}
		if err != nil {
			c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDRAssignmentFailed, err.Error())
			return nil
		}
		c.setWaiting(n.Name, false)
		err = c.patchPodCIDRs(ctx, node.Name, node.ResourceVersion, got.PodCIDRs)
		if err == nil {
			logger.V(2).Info("Assigned pod CIDRs", "podCIDRs", got.PodCIDRs, "clusterCIDRs", got.ClusterCIDRs)
			for _, cc := range got.ClusterCIDRs { // one: an allocation comes from one ClusterCIDR
				c.metrics.allocations.WithLabelValues(cc).Inc()
			}
			return nil
		}
		if ctx.Err() != nil {
			// Stopping: this allocator is discarded, and whoever allocates next rebuilds from
			// the API whether or not the patch landed.
			return nil
		}
		if !apierrors.IsConflict(err) {
			if apierrors.IsNotFound(err) {
				c.release(ctx, n.Name)
				return nil
			}
			// A timeout may have applied the patch: keep the reservation, so the retry writes
			// the same block and nothing else can get it meanwhile.
			if !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
				c.allocator().Release(n.Name)
			}
			c.recorder.Eventf(node, corev1.EventTypeWarning, ReasonCIDRAssignmentFailed, "Setting pod CIDRs %v: %v", got.PodCIDRs, err)
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		fresh, err := c.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			c.release(ctx, n.Name)
			return nil
		}
		if err != nil {
			return fmt.Errorf("node %s: re-reading after a conflict: %w", n.Name, err)
		}
		fn, freshErr := nodeFromAPI(fresh)
		switch afterConflict(n, got.PodCIDRs, fn, freshErr) {
		case conflictFreshUnusable:
			c.allocator().Release(n.Name)
			c.recorder.Event(fresh, corev1.EventTypeWarning, ReasonCIDROutsideClusterCIDRs, freshErr.Error())
			return nil
		case conflictOtherAllocator:
			c.allocator().Release(n.Name)
			// Another allocator is (or was) at work: what else it handed out is in the API,
			// not necessarily in our cache yet.
			c.rebuildWanted.Store(true)
			fallthrough
		case conflictSameCIDRs:
			logger.V(2).Info("Node got pod CIDRs from another writer", "podCIDRs", fn.PodCIDRs)
			c.occupy(ctx, fresh, fn)
			return nil
		case conflictRechoose:
			c.allocator().Release(n.Name)
		}
		node, n = fresh, fn
	}
	return fmt.Errorf("node %s: %d resourceVersion conflicts in a row", n.Name, maxPatchAttempts)
}

// patchPodCIDRs sets spec.podCIDR and spec.podCIDRs in one JSON merge patch. The
// resourceVersion in the patch makes it conditional: the API server answers Conflict if the
// Node changed since it was read.
func (c *Controller) patchPodCIDRs(ctx context.Context, name, resourceVersion string, cidrs []netip.Prefix) error {
	strs := make([]string, len(cidrs))
	for i, p := range cidrs {
		strs[i] = p.String()
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": resourceVersion},
		"spec":     map[string]any{"podCIDR": strs[0], "podCIDRs": strs},
	})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	return err
}
