package main

import (
	"context"

	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/compose"
)

// runControllers is `k3snet controllers`: the cluster-wide controllers, each under its own
// Lease but the deploy controller, until SIGTERM; then, if its ServiceAccount is being
// deleted, the cluster side of the uninstall.
func runControllers(ctx context.Context, cfg *controllersConfig) error {
	logger := klog.FromContext(ctx)
	restConfig, client, version, err := connect(cfg.kubeconfig)
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	if cfg.self.IsSet() {
		if err := compose.EnsureUninstallGrant(ctx, client, cfg.self); err != nil {
			// The controllers work without it; only an uninstall would leave finalizers.
			logger.Error(err, "Cannot make the uninstall grant; an uninstall will need `k3snet uninstall` to finish")
		}
	}
	reg := compose.NewControllerMetrics()
	controllers, err := compose.ClusterControllers(ctx, cfg.cluster, restConfig, client, reg)
	if err != nil {
		return err
	}
	leases := compose.Leases{Namespace: cfg.leaseNamespace, Identity: compose.LeaderIdentity(cfg.podName)}
	waitControllers, err := compose.RunWithHealth(ctx, client, leases, controllers, cfg.metricsBindAddress, reg)
	if err != nil {
		return err
	}
	logger.Info("k3snet controllers are ready", "kubernetes", version, "leaseNamespace", leases.Namespace, "identity", leases.Identity)
	<-ctx.Done()
	logger.Info("Shutting down")
	// Stopped first: a ServiceLB still running would put back the DaemonSets the uninstall
	// removes.
	compose.AwaitStopped(ctx, waitControllers)

	ctx, cancel := afterSIGTERM(ctx)
	defer cancel()
	if !compose.BeingUninstalled(ctx, client, cfg.self) {
		return nil
	}
	return compose.UninstallCluster(ctx, client, meta, compose.ClusterUninstall{
		Namespace:          cfg.self.Namespace,
		ServiceLBNamespace: cfg.cluster.ServiceLBNamespace,
		Self:               cfg.self,
	})
}
