package main

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/netpol"
)

// runNode is `k3snet node`: the node's address annotations, then NetworkPolicy enforcement for
// its pods until SIGTERM. At SIGTERM the rules stay, so the node keeps enforcing the last
// policies through a restart or an upgrade, unless its ServiceAccount is being deleted: then
// k3snet is being uninstalled, and every rule and set goes.
func runNode(ctx context.Context, cfg *nodeConfig) error {
	logger := klog.FromContext(ctx).WithValues("node", cfg.nodeName)
	ctx = klog.NewContext(ctx, logger)
	_, client, version, err := connect(cfg.kubeconfig)
	if err != nil {
		return err
	}
	if err := compose.AnnotateNode(ctx, client, ccmstub.NodeConfig{
		Name:                   cfg.nodeName,
		InternalIPs:            cfg.nodeIPs,
		ExternalIPs:            cfg.nodeExternalIPs,
		DisableCloudController: cfg.disableCloudController,
	}); err != nil {
		return err
	}
	reg := compose.NewControllerMetrics()
	var controllers []compose.Controller
	if cfg.disableNetworkPolicy {
		compose.RemoveNetworkPolicyRules(ctx)
	} else {
		controllers = append(controllers, compose.NetworkPolicy(client, cfg.nodeName, cfg.serviceCIDRs, reg))
	}
	// Node-local controllers take no Lease.
	if _, err := compose.RunWithHealth(ctx, client, compose.Leases{}, controllers, cfg.metricsBindAddress, reg); err != nil {
		return err
	}
	logger.Info("k3snet node is ready", "kubernetes", version, "networkPolicy", !cfg.disableNetworkPolicy)
	<-ctx.Done()
	logger.Info("Shutting down")

	ctx, cancel := afterSIGTERM(ctx)
	defer cancel()
	if cfg.disableNetworkPolicy || !compose.BeingUninstalled(ctx, client, cfg.self) {
		return nil
	}
	// The controller's context has ended, so it starts no command any more; one in flight is
	// killed with it.
	if err := netpol.Cleanup(ctx); err != nil {
		return err
	}
	logger.Info("Removed every NetworkPolicy rule and set of this node")
	return nil
}
