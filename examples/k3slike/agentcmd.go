package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/k3sflags"
	"github.com/k3snet/k3snet/internal/nodejoin"
)

// joinTimeout bounds Join: the server approves the agent's certificates within seconds.
const joinTimeout = 2 * time.Minute

// runAgent is `k3slike agent`, K3s's agent: it joins the server with the token, runs the
// node's containerd, kubelet (which gets its own certificate through Kubernetes' TLS
// bootstrap) and kube-proxy, annotates the node's addresses for the cloud-controller stub,
// and runs the node-local controllers; nothing cluster-wide.
func runAgent(ctx context.Context, cfg *config) error {
	logger := klog.FromContext(ctx)
	// The node-local controllers stop with the node's processes.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tok, err := nodejoin.ParseToken(cfg.token)
	if err != nil {
		return fmt.Errorf("invalid --token: %w", err)
	}
	if _, _, err := nodePreflight(cfg); err != nil {
		return err
	}
	l := agent.NewLayout(cfg.dataDir)
	joinCtx, cancel := context.WithTimeout(ctx, joinTimeout)
	creds, err := nodejoin.Join(joinCtx, cfg.serverURL, tok, l.Agent)
	cancel()
	if err != nil {
		return fmt.Errorf("joining %s: %w", cfg.serverURL, err)
	}
	cluster, err := agentClusterSettings(creds.Config)
	if err != nil {
		return fmt.Errorf("the server's agent configuration: %w", err)
	}
	logger.Info("Joined the cluster", "server", creds.ServerURL, "node", cfg.nodeName)
	nodeCreds := nodeCredentials{
		caCertFile:       filepath.Join(l.Agent, "server-ca.crt"),
		kubelet:          filepath.Join(l.Agent, "kubelet.kubeconfig"),
		kubeletBootstrap: creds.KubeletBootstrapKubeconfig,
		kubeProxy:        creds.KubeProxyKubeconfig,
		controller:       creds.ControllerKubeconfig,
	}
	a, err := startNode(ctx, cfg, cluster, nodeCreds)
	if err != nil {
		return err
	}
	// The kubelet writes its kubeconfig once its client certificate is issued; the node's
	// own identity then annotates its addresses, which NodeRestriction allows on its own Node.
	kubeletClient, err := waitForKubeletClient(ctx, nodeCreds.kubelet, a)
	if err != nil {
		return errors.Join(err, a.Stop())
	}
	if err := waitForNode(ctx, kubeletClient, cfg.nodeName, a); err != nil {
		return errors.Join(err, a.Stop())
	}
	agentCfg := *cfg
	agentCfg.disableCloudController = cluster.disableCloudController
	if err := annotateOwnNode(ctx, kubeletClient, &agentCfg); err != nil {
		return errors.Join(err, a.Stop())
	}
	controllerClient, err := clientFromKubeconfig(nodeCreds.controller)
	if err != nil {
		return errors.Join(err, a.Stop())
	}
	if cluster.disableNetworkPolicy {
		compose.RemoveNetworkPolicyRules(ctx)
	}
	reg := compose.NewControllerMetrics()
	status := compose.NewReadiness()
	compose.RunControllers(ctx, controllerClient, leases(), nodeControllers(cfg, cluster, controllerClient, reg), status)
	logger.Info("k3slike agent is ready", "node", cfg.nodeName, "server", creds.ServerURL)
	return runUntilDone(ctx, a)
}

// agentClusterSettings parses the settings the server published for agents.
func agentClusterSettings(c nodejoin.AgentConfig) (clusterSettings, error) {
	var errs []error
	parse := func(what string, items []string) []netip.Prefix {
		out, err := k3sflags.ParseCIDRs(items, "")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		return out
	}
	s := clusterSettings{
		clusterCIDRs:           parse("cluster CIDRs", c.ClusterCIDRs),
		serviceCIDRs:           parse("service CIDRs", c.ServiceCIDRs),
		clusterDomain:          c.ClusterDomain,
		systemDefaultRegistry:  c.SystemDefaultRegistry,
		serviceNodePortRange:   c.ServiceNodePortRange,
		disableNetworkPolicy:   c.DisableNetworkPolicy,
		disableServiceLB:       c.DisableServiceLB,
		disableCloudController: c.DisableCloudController,
	}
	for _, a := range c.ClusterDNS {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster DNS: %w", err))
			continue
		}
		s.clusterDNS = append(s.clusterDNS, ip)
	}
	if len(s.clusterCIDRs) == 0 || len(s.serviceCIDRs) == 0 {
		errs = append(errs, errors.New("no cluster or service CIDRs"))
	}
	return s, errors.Join(errs...)
}
