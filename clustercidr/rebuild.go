package clustercidr

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/workloop"
)

// rebuild returns an allocator holding what the API says: the ClusterCIDRs from the cache (or
// the default range alone without MultiClusterCIDR) and every Node's pod CIDRs.
func (c *Controller) rebuild(ctx context.Context) (*Allocator, error) {
	logger := klog.FromContext(ctx)
	alloc, err := NewAllocator(c.serviceCIDRs)
	if err != nil {
		return nil, err
	}
	var terminating []string
	if c.ccs == nil {
		// Without --multi-cluster-cidr the flags are the only range, as in K3s's range
		// allocator (each family its own node mask); no object is read or written.
		if err := alloc.AddRange(DefaultClusterCIDRName, c.rangePrefixes, c.rangeMasks[ipv4], c.rangeMasks[ipv6]); err != nil {
			return nil, err
		}
	} else {
		objs, err := c.ccs.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("listing ClusterCIDRs: %w", err)
		}
		for _, o := range objs {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			spec, err := specFromObject(u)
			if err == nil {
				err = alloc.AddClusterCIDR(u.GetName(), spec)
			}
			if err != nil {
				// The ClusterCIDR worker reports it as an Event on the object.
				logger.Error(err, "Ignoring ClusterCIDR", "clusterCIDR", u.GetName())
				continue
			}
			if u.GetDeletionTimestamp() != nil {
				terminating = append(terminating, u.GetName())
			}
		}
	}
	// The Nodes come from a live (quorum) list, not the cache: after a Lease handover the
	// cache may not have seen the previous leader's last patches yet, and a block missing
	// here would be handed out twice. Syncs of Nodes the cache still shows without CIDRs
	// then get the held block back (Allocate) and end in a conflict and a re-read.
	nodes, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Nodes: %w", err)
	}
	in := make([]Node, 0, len(nodes.Items))
	for i := range nodes.Items {
		n := &nodes.Items[i]
		nn, err := nodeFromAPI(n)
		if err != nil {
			logger.Error(err, "Ignoring the pod CIDRs of a Node", "node", klog.KObj(n))
			continue
		}
		in = append(in, nn)
	}
	if err := alloc.Restore(in); err != nil {
		// Each failing Node gets its Warning Event when its key is synced.
		logger.Info("Some Nodes' pod CIDRs could not be placed", "err", err)
	}
	for _, name := range terminating {
		alloc.DeleteClusterCIDR(name)
	}
	return alloc, nil
}

// gated runs sync under the read side of the gate, so no rebuild happens during it.
func (c *Controller) gated(sync func(context.Context, string) error) workloop.Sync[cache.ObjectName] {
	return func(ctx context.Context, key cache.ObjectName) error {
		c.gate.RLock()
		defer c.gate.RUnlock()
		return sync(ctx, key.Name)
	}
}

// rebuildIfWanted rebuilds the allocator from the API when a sync found another writer
// (rebuildWanted), once every sync in flight has finished and before any other starts: the
// state a new leader starts from. Then every Node is queued again, so conflicts the rebuild
// found get their Events. A failed rebuild keeps the old allocator and is tried again after
// the next key.
func (c *Controller) rebuildIfWanted(ctx context.Context) {
	if !c.rebuildWanted.Load() {
		return
	}
	c.gate.Lock()
	defer c.gate.Unlock()
	if !c.rebuildWanted.CompareAndSwap(true, false) {
		return // another worker did it meanwhile
	}
	logger := klog.FromContext(ctx)
	alloc, err := c.rebuild(ctx)
	if err != nil {
		c.rebuildWanted.Store(true)
		logger.Error(err, "Rebuilding the allocator after another writer was seen failed; retrying")
		return
	}
	c.alloc.Store(alloc)
	logger.Info("Another writer set pod CIDRs; the allocator was rebuilt from the API")
	nodes, _ := c.nodes.List(labels.Everything())
	for _, n := range nodes {
		c.nodeQueue.Add(cache.MetaObjectToName(n))
	}
}
