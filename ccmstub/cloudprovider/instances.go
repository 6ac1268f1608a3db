package cloudprovider

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/ccmstub"
)

// ErrAddressesNotSet is InstanceMetadata's error for a node whose agent has not yet published
// its internal IPs. The upstream cloud-node controller retries and the node keeps the
// uninitialized taint meanwhile: K3s's fix (PR #4218) for nodes untainted before they had
// addresses.
var ErrAddressesNotSet = errors.New("address annotations not yet set")

// instances is the InstancesV2 of the stub: every node is an instance that exists and runs.
type instances struct {
	keys ccmstub.Keys
}

var _ cloudprovider.InstancesV2 = instances{}

// InstanceExists is always true: a stub has no inventory to lose a node from, so the upstream
// cloud-node-lifecycle controller never deletes a Node.
func (instances) InstanceExists(context.Context, *corev1.Node) (bool, error) { return true, nil }

// InstanceShutdown is always false, so no node gets the shutdown taint.
func (instances) InstanceShutdown(context.Context, *corev1.Node) (bool, error) { return false, nil }

// InstanceMetadata returns ccmstub.NodeMetadata for the node, or ErrAddressesNotSet until its
// agent has annotated an internal IP. Annotation items that are not IPs or DNS names are left
// out and logged; the upstream framework offers no way to put an Event on the Node from here.
func (i instances) InstanceMetadata(ctx context.Context, node *corev1.Node) (*cloudprovider.InstanceMetadata, error) {
	meta := ccmstub.NodeMetadata(node, i.keys)
	logger := klog.FromContext(ctx)
	for _, v := range meta.Invalid {
		logger.Info("Ignoring an invalid node address", "node", klog.KObj(node), "problem", v.String())
	}
	if !meta.HasInternalIP() {
		return nil, fmt.Errorf("node %s: %w (%s)", node.Name, ErrAddressesNotSet, i.keys.InternalIP)
	}
	return &cloudprovider.InstanceMetadata{
		ProviderID:    meta.ProviderID,
		InstanceType:  meta.InstanceType,
		NodeAddresses: meta.Addresses,
		Zone:          meta.Zone,
		Region:        meta.Region,
	}, nil
}
