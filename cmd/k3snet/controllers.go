//go:build !k3snet_node

package main

import (
	"context"
	"os"

	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/clusterwide"
	"github.com/k3snet/k3snet/internal/compose"
)

// controllersCommand is `k3snet controllers` with its arguments.
func controllersCommand(ctx context.Context, args []string) error {
	cfg, err := parseControllersFlags(args, os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	return runControllers(ctx, cfg)
}

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
	controllers, err := clusterwide.Controllers(ctx, cfg.cluster, restConfig, client, reg)
	if err != nil {
		return err
	}
	leases := compose.Leases{Namespace: cfg.leaseNamespace, Identity: compose.LeaderIdentity(cfg.podName)}
	// A replica started (or restarted) during an uninstall runs no controller: it would take
	// back a Lease and put back what the uninstall removes.
	if !compose.BeingUninstalled(ctx, client, cfg.self) {
		// The controllers stop at SIGTERM, or as soon as k3snet is being uninstalled.
		running, stopControllers := context.WithCancel(ctx)
		go compose.WatchUninstall(running, client, cfg.self, stopControllers)
		waitControllers, err := compose.RunWithHealth(running, client, leases, controllers, cfg.metricsBindAddress, reg)
		if err != nil {
			stopControllers()
			return err
		}
		logger.Info("k3snet controllers are ready", "kubernetes", version, "leaseNamespace", leases.Namespace, "identity", leases.Identity)
		<-running.Done()
		stopControllers()
		logger.Info("Shutting down")
		// Stopped first: a ServiceLB still running would put back the DaemonSets the
		// uninstall removes.
		compose.AwaitStopped(ctx, waitControllers)
	}

	sigterm := ctx
	ctx, cancel := afterSIGTERM(ctx)
	defer cancel()
	if !compose.BeingUninstalled(ctx, client, cfg.self) {
		return nil
	}
	// Every replica stops on its own; the cleanup waits for all of them, so that none puts
	// back what it removes.
	if err := compose.WaitForLeasesReleased(ctx, client, leases.Namespace, 2*compose.LeaseDuration); err != nil {
		logger.Error(err, "Another replica still holds a controller Lease; uninstalling all the same")
	}
	err = compose.UninstallCluster(ctx, client, meta, compose.ClusterUninstall{
		Namespace:          cfg.self.Namespace,
		ServiceLBNamespace: cfg.cluster.ServiceLBNamespace,
		Self:               cfg.self,
	})
	if sigterm.Err() == nil {
		// Uninstalled before the pod was told to stop: wait for that rather than exit and be
		// restarted into a namespace that is going away.
		logger.Info("Uninstall done; waiting for the pod to be deleted", "err", err)
		<-sigterm.Done()
	}
	return err
}
