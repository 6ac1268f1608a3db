package main

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/compose"
)

// runUninstall is `k3snet uninstall`, run by an administrator: the cluster side of the
// uninstall, for when the controllers cannot do it (scaled to zero, crash-looping, or their
// ServiceAccount token already expired). The nodes' rules are out of its reach.
func runUninstall(ctx context.Context, cfg *uninstallConfig) error {
	logger := klog.FromContext(ctx)
	restConfig, client, _, err := connect(cfg.kubeconfig)
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	running, err := client.CoreV1().Pods(cfg.namespace).List(ctx, metav1.ListOptions{LabelSelector: compose.NameLabel + "=" + compose.ControllersAppName})
	if err != nil {
		return fmt.Errorf("listing the controllers' pods: %w", err)
	}
	for _, pod := range running.Items {
		if pod.DeletionTimestamp == nil {
			logger.Info("A controllers pod still runs and may put back what this removes; scale the Deployment to 0 first", "pod", klog.KObj(&pod))
		}
	}
	if err := compose.UninstallCluster(ctx, client, meta, compose.ClusterUninstall{
		Namespace:          cfg.namespace,
		ServiceLBNamespace: cfg.serviceLBNamespace,
	}); err != nil {
		return err
	}
	logger.Info("Done. The nodes' NetworkPolicy rules and sets are out of reach from here: each k3snet node pod removes them when " +
		"its ServiceAccount is being deleted, and `k3snet node --disable-network-policy` (or `iptables-save | grep -v KUBE-ROUTER | iptables-restore` " +
		"and `ipset destroy`) removes them on a node")
	return nil
}
