package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/controlplane"
	"github.com/k3snet/k3snet/internal/nodejoin"
)

// controlPlaneRoleLabel marks a server's node, as K3s labels it (the kubelet may not set
// node-role labels itself: NodeRestriction forbids it).
const controlPlaneRoleLabel = "node-role.kubernetes.io/control-plane"

// serverNode is the server's own node: its agent and the identity its node-local controllers
// use.
type serverNode struct {
	agent            *agent.Agent
	controllerClient kubernetes.Interface
}

// startServerNode does what `k3s server` does for its own node: writes the join token agents
// need (<data-dir>/server/node-token) and the objects that let them join, gives the local
// kubelet, kube-proxy and node controllers certificates from the cluster CA, starts the node's
// processes and waits for the kubelet to register the node, then labels and annotates it.
func startServerNode(ctx context.Context, cfg *config, cp *controlplane.ControlPlane, client kubernetes.Interface) (*serverNode, error) {
	logger := klog.FromContext(ctx)
	tok, err := nodejoin.LoadOrCreateToken(filepath.Join(cfg.dataDir, "server", "node-token"), cp.CACertPEM())
	if err != nil {
		return nil, err
	}
	cluster := serverClusterSettings(cfg)
	if err := nodejoin.EnsureServerObjects(ctx, client, tok, nodejoin.AgentConfig{
		ClusterCIDRs:           compose.Strings(cluster.clusterCIDRs),
		ServiceCIDRs:           compose.Strings(cluster.serviceCIDRs),
		ClusterDNS:             compose.Strings(cluster.clusterDNS),
		ClusterDomain:          cluster.clusterDomain,
		DisableNetworkPolicy:   cluster.disableNetworkPolicy,
		DisableServiceLB:       cluster.disableServiceLB,
		DisableCloudController: cluster.disableCloudController,
		SystemDefaultRegistry:  cluster.systemDefaultRegistry,
		ServiceNodePortRange:   cluster.serviceNodePortRange,
	}); err != nil {
		return nil, err
	}

	l := agent.NewLayout(cfg.dataDir)
	if err := os.MkdirAll(l.Agent, 0o700); err != nil {
		return nil, err
	}
	local := "https://127.0.0.1:" + strconv.Itoa(cfg.httpsListenPort)
	creds := nodeCredentials{
		caCertFile: filepath.Join(l.Agent, "server-ca.crt"),
		kubelet:    filepath.Join(l.Agent, "kubelet.kubeconfig"),
		kubeProxy:  filepath.Join(l.Agent, "kubeproxy.kubeconfig"),
		controller: filepath.Join(l.Agent, "k3scontroller.kubeconfig"),
	}
	if err := os.WriteFile(creds.caCertFile, cp.CACertPEM(), 0o644); err != nil {
		return nil, err
	}
	for _, id := range []struct{ path, user, group string }{
		{creds.kubelet, "system:node:" + cfg.nodeName, "system:nodes"},
		{creds.kubeProxy, "system:kube-proxy", ""},
		{creds.controller, "system:k3s-controller", ""},
	} {
		var groups []string
		if id.group != "" {
			groups = []string{id.group}
		}
		if err := cp.WriteClientKubeconfig(id.path, local, id.user, groups...); err != nil {
			return nil, err
		}
	}
	controllerClient, err := clientFromKubeconfig(creds.controller)
	if err != nil {
		return nil, err
	}

	a, err := startNode(ctx, cfg, cluster, creds)
	if err != nil {
		return nil, err
	}
	node := &serverNode{agent: a, controllerClient: controllerClient}
	if err := waitForNode(ctx, client, cfg.nodeName, a); err != nil {
		return nil, errors.Join(err, a.Stop())
	}
	// The kubelet registers --node-label's labels only with a new Node; K3s applies them again
	// at a restart.
	labels := registrationLabels(cfg.nodeLabels)
	labels[controlPlaneRoleLabel] = "true"
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return nil, errors.Join(err, a.Stop())
	}
	if _, err := client.CoreV1().Nodes().Patch(ctx, cfg.nodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return nil, errors.Join(fmt.Errorf("labelling node %s: %w", cfg.nodeName, err), a.Stop())
	}
	if err := annotateOwnNode(ctx, client, cfg); err != nil {
		return nil, errors.Join(err, a.Stop())
	}
	logger.Info("Node registered", "node", cfg.nodeName, "joinToken", filepath.Join(cfg.dataDir, "server", "node-token"))
	return node, nil
}

// serverClusterSettings are the server's flags as the cluster settings its nodes use.
func serverClusterSettings(cfg *config) clusterSettings {
	return clusterSettings{
		clusterCIDRs:           cfg.clusterCIDRs,
		serviceCIDRs:           cfg.serviceCIDRs,
		clusterDNS:             cfg.clusterDNS,
		clusterDomain:          cfg.clusterDomain,
		systemDefaultRegistry:  cfg.systemDefaultRegistry,
		serviceNodePortRange:   cfg.serviceNodePortRange,
		disableNetworkPolicy:   cfg.disableNetworkPolicy,
		disableServiceLB:       cfg.disabled("servicelb"),
		disableCloudController: cfg.disableCloudController,
	}
}

// clientFromKubeconfig builds a client with the control plane's rate limits.
func clientFromKubeconfig(path string) (kubernetes.Interface, error) {
	restConfig, err := compose.LoadKubeconfig(path)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	return kubernetes.NewForConfig(restConfig)
}
