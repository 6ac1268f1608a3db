package compose

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/netpol"
)

// NetworkPolicy is the NetworkPolicy controller of one node, which every node runs for its
// own pods, with K3s's default NodePort range.
func NetworkPolicy(client kubernetes.Interface, nodeName string, serviceCIDRs []netip.Prefix, reg *ControllerMetrics) Controller {
	return NetworkPolicyWithNodePorts(client, nodeName, serviceCIDRs, NodePortRange{}, reg)
}

// NodePortRange is --service-node-port-range, the ports NetworkPolicy leaves open on the node;
// the zero value is K3s's default, 30000-32767.
type NodePortRange struct{ First, Last uint16 }

// NetworkPolicyWithNodePorts is NetworkPolicy for a cluster whose NodePort range is ports.
func NetworkPolicyWithNodePorts(client kubernetes.Interface, nodeName string, serviceCIDRs []netip.Prefix, ports NodePortRange, reg *ControllerMetrics) Controller {
	return Controller{Name: "netpol", Start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		np, err := netpol.New(client, netpol.Options{NodeName: nodeName, ServiceCIDRs: serviceCIDRs,
			NodePortFirst: ports.First, NodePortLast: ports.Last, MetricsRegistry: reg.Fresh("netpol"),
			// The first sync's peak (every pod listed and compiled at once) is garbage once
			// it lands; a node process then idles far below it.
			AfterFirstApply: debug.FreeOSMemory})
		if err != nil {
			return err
		}
		return np.Start(ctx, f)
	}, PodFields: netpol.SharedPodFields()}
}

// RemoveNetworkPolicyRules is --disable-network-policy on a node: every rule and set of ours
// goes. A failure is only logged: leftover rules keep enforcing the last policies, and the
// node's other controllers still serve.
func RemoveNetworkPolicyRules(ctx context.Context) {
	if err := netpol.Cleanup(ctx); err != nil {
		klog.FromContext(ctx).Error(err, "--disable-network-policy: removing the network policy rules failed")
	}
}

// AnnotateNode publishes a node's addresses for the cloud-controller stub, retrying for a
// minute until the Node exists and the patch lands, as the K3s agent does.
func AnnotateNode(ctx context.Context, client kubernetes.Interface, node ccmstub.NodeConfig) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = ccmstub.AnnotateNode(ctx, client, node)
		if last != nil && !apierrors.IsNotFound(last) && !apierrors.IsConflict(last) {
			return false, last
		}
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("annotating node %s: %w", node.Name, errors.Join(err, last))
	}
	return nil
}
