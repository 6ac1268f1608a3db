package main

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/controlplane"
	"github.com/k3snet/k3snet/internal/nodejoin"
)

// leases are where a server's cluster-wide controllers take their Leases: kube-system, as K3s
// keeps its controllers' leases there.
func leases() compose.Leases {
	return compose.Leases{Namespace: metav1.NamespaceSystem, Identity: compose.LeaderIdentity("")}
}

// controllerSettings are the server's flags as the cluster-wide controllers' settings.
func (c *config) controllerSettings() compose.ClusterSettings {
	// Validated with the flags and again before the control plane starts.
	kcm, _ := parseControllerManagerArgs(c.kubeControllerManagerArgs, c.clusterCIDRs)
	return compose.ClusterSettings{
		DataDir:                    c.dataDir,
		Disable:                    c.disable,
		DisableCloudController:     c.disableCloudController,
		DisableNodeIPAM:            c.disableNodeIPAM,
		DisableDeploy:              c.disableDeploy,
		DisableHelmController:      c.disableHelmController,
		MultiClusterCIDR:           c.multiClusterCIDR,
		NodeCIDRMaskSizeIPv4:       kcm.nodeMaskIPv4,
		NodeCIDRMaskSizeIPv6:       kcm.nodeMaskIPv6,
		ClusterCIDRs:               c.clusterCIDRs,
		ServiceCIDRs:               c.serviceCIDRs,
		ClusterDNS:                 c.clusterDNS,
		ClusterDomain:              c.clusterDomain,
		ServiceLBNamespace:         c.serviceLBNamespace,
		ServiceLBReservedHostPorts: c.reservedHostPorts,
		SystemDefaultRegistry:      c.systemDefaultRegistry,
		HelmJobImage:               c.helmJobImage,
		APIServerPort:              c.httpsListenPort,
	}
}

// serverNetworkPolicy is NetworkPolicy enforcement on a server without a real node: it is
// node-local, so every server programs its own node (with a real node, as part of the node's
// controllers). --disable-network-policy removes the rules instead.
func serverNetworkPolicy(ctx context.Context, cfg *config, client kubernetes.Interface, reg *compose.ControllerMetrics) []compose.Controller {
	if cfg.disableNetworkPolicy {
		compose.RemoveNetworkPolicyRules(ctx)
		return nil
	}
	if cfg.disableAgent || cfg.kubeconfig != "" {
		return []compose.Controller{compose.NetworkPolicyWithNodePorts(client, cfg.nodeName, cfg.serviceCIDRs, nodePortRange(cfg.serviceNodePortRange), reg)}
	}
	return nil
}

// annotateOwnNode publishes the node's addresses for the stub, retrying until the Node exists
// and the patch lands, as the K3s agent does.
func annotateOwnNode(ctx context.Context, client kubernetes.Interface, cfg *config) error {
	return compose.AnnotateNode(ctx, client, ccmstub.NodeConfig{
		Name:                   cfg.nodeName,
		InternalIPs:            nodeInternalIPs(cfg),
		ExternalIPs:            cfg.nodeExternalIPs,
		InternalDNS:            cfg.nodeInternalDNS,
		ExternalDNS:            cfg.nodeExternalDNS,
		DisableCloudController: cfg.disableCloudController,
	})
}

// approverController approves the client certificates joining agents request for their
// kube-proxy and node controllers; the kubelets' own are approved by the controller manager.
func approverController(client kubernetes.Interface) compose.Controller {
	return compose.Controller{Name: "node-csr-approver", ClusterWide: true, Start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		a, err := nodejoin.NewApprover(client, nodejoin.ApproverOptions{})
		if err != nil {
			return err
		}
		return a.Start(ctx, f)
	}, ReadsNoPods: true}
}

// resolveBinDir is --bin-dir, else where hack/build-tools.sh put the binaries.
func resolveBinDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return controlplane.FindBinDir()
}

// nodePortRange is --service-node-port-range (validated with the flags) as the NodePorts
// NetworkPolicy leaves open; empty is K3s's default.
func nodePortRange(s string) compose.NodePortRange {
	pr, err := utilnet.ParsePortRange(s)
	if err != nil || pr.Size == 0 {
		return compose.NodePortRange{}
	}
	return compose.NodePortRange{First: uint16(pr.Base), Last: uint16(pr.Base + pr.Size - 1)}
}
