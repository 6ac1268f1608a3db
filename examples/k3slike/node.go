package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/podnet"
	"github.com/k3snet/k3snet/internal/systemimage"
)

// nodeRegistrationTimeout bounds the wait for the kubelet to register the node: a cold start
// imports the air-gap images first.
const nodeRegistrationTimeout = 3 * time.Minute

// clusterSettings are the cluster-wide settings a node needs: the server's own flags, or what
// the server hands a joining agent.
type clusterSettings struct {
	clusterCIDRs, serviceCIDRs []netip.Prefix
	clusterDNS                 []netip.Addr
	clusterDomain              string
	systemDefaultRegistry      string
	// serviceNodePortRange is --service-node-port-range; empty is K3s's default.
	serviceNodePortRange   string
	disableNetworkPolicy   bool
	disableServiceLB       bool
	disableCloudController bool
}

// nodeCredentials are the kubeconfigs of a node's identities.
type nodeCredentials struct {
	caCertFile string
	// kubelet is the kubelet's --kubeconfig; with kubeletBootstrap set, the kubelet writes it.
	kubelet, kubeletBootstrap string
	kubeProxy                 string
	// controller is system:k3s-controller's, for the node-local controllers.
	controller string
}

// nodePreflight finds the node's binaries and checks that this machine can run containers,
// before anything starts.
func nodePreflight(cfg *config) (binDir, nodeBinDir string, err error) {
	if binDir, err = resolveBinDir(cfg.binDir); err != nil {
		return "", "", err
	}
	if nodeBinDir = cfg.nodeBinDir; nodeBinDir == "" {
		if nodeBinDir, err = agent.FindNodeBinDir(); err != nil {
			return "", "", err
		}
	}
	return binDir, nodeBinDir, agent.Preflight(binDir, nodeBinDir)
}

// startNode starts the node's containerd, kubelet and kube-proxy.
func startNode(ctx context.Context, cfg *config, cluster clusterSettings, creds nodeCredentials) (*agent.Agent, error) {
	binDir, nodeBinDir, err := nodePreflight(cfg)
	if err != nil {
		return nil, err
	}
	// K3s's pause image, behind --system-default-registry as every system image.
	image := systemimage.Name(cluster.systemDefaultRegistry, images.PauseImage)
	return agent.Start(ctx, &agent.Config{
		NodeName:                   cfg.nodeName,
		NodeIPs:                    nodeInternalIPs(cfg),
		DataDir:                    cfg.dataDir,
		BinDir:                     binDir,
		NodeBinDir:                 nodeBinDir,
		ClusterCIDRs:               cluster.clusterCIDRs,
		ServiceCIDRs:               cluster.serviceCIDRs,
		ClusterDNS:                 cluster.clusterDNS,
		ClusterDomain:              cluster.clusterDomain,
		SandboxImage:               image,
		AllowForwardingSysctls:     !cluster.disableServiceLB,
		ExternalCloudProvider:      !cluster.disableCloudController,
		NodeLabels:                 cfg.nodeLabels,
		NodeTaints:                 cfg.nodeTaints,
		KubeletArgs:                cfg.kubeletArgs,
		KubeProxyArgs:              cfg.kubeProxyArgs,
		CACertFile:                 creds.caCertFile,
		KubeletKubeconfig:          creds.kubelet,
		KubeletBootstrapKubeconfig: creds.kubeletBootstrap,
		KubeProxyKubeconfig:        creds.kubeProxy,
	})
}

// nodeControllers are the controllers every node runs for itself: its pod network and, unless
// disabled, NetworkPolicy enforcement, both as system:k3s-controller.
func nodeControllers(cfg *config, cluster clusterSettings, client kubernetes.Interface, reg *compose.ControllerMetrics) []compose.Controller {
	l := agent.NewLayout(cfg.dataDir)
	out := []compose.Controller{{Name: "podnet", Start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		pn, err := podnet.New(client, podnet.Options{NodeName: cfg.nodeName, CNIConfDir: l.CNIConfDir, IPAMDataDir: l.CNIIPAM,
			ClusterCIDRs: cluster.clusterCIDRs})
		if err != nil {
			return err
		}
		return pn.Start(ctx, f)
	}, ReadsNoPods: true}}
	if !cluster.disableNetworkPolicy {
		out = append(out, compose.NetworkPolicyWithNodePorts(client, cfg.nodeName, cluster.serviceCIDRs, nodePortRange(cluster.serviceNodePortRange), reg))
	}
	return out
}

// waitForNode waits until the kubelet has registered the node.
func waitForNode(ctx context.Context, client kubernetes.Interface, name string, a *agent.Agent) error {
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, nodeRegistrationTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-a.Exited():
			return false, fmt.Errorf("a node process stopped: %w", err)
		default:
		}
		_, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			// A joining kubelet's own identity may not read its Node before it registered.
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("waiting for the kubelet to register node %s (logs: %s): %w", name, a.Layout().Logs, err)
	}
	return nil
}

// waitForKubeletClient waits until the kubeconfig a joining kubelet writes once its client
// certificate is issued loads, certificate included (the kubelet writes the kubeconfig before
// the certificate file it names), and returns a client with that identity.
func waitForKubeletClient(ctx context.Context, path string, a *agent.Agent) (kubernetes.Interface, error) {
	var client kubernetes.Interface
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, nodeRegistrationTimeout, true, func(context.Context) (bool, error) {
		select {
		case err := <-a.Exited():
			return false, fmt.Errorf("a node process stopped: %w", err)
		default:
		}
		if _, err := os.Stat(path); err != nil {
			last = err
			return false, nil
		}
		client, last = clientFromKubeconfig(path)
		return last == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the kubelet's TLS bootstrap to write %s (logs: %s): %w", path, a.Layout().Logs, errors.Join(err, last))
	}
	return client, nil
}

// runUntilDone waits for ctx or for a node process to stop, then stops the node's processes
// (pods keep running). A process that stops on its own is an error: K3s exits when its
// kubelet or containerd dies, and so does k3slike.
func runUntilDone(ctx context.Context, a *agent.Agent) error {
	var err error
	select {
	case <-ctx.Done():
	case e := <-a.Exited():
		err = fmt.Errorf("a node process stopped: %w", e)
	}
	klog.FromContext(ctx).Info("Stopping the node's processes; pods keep running (k3slike killall removes them)")
	return errors.Join(err, a.Stop())
}

// killall is `k3slike killall`: what k3s-killall.sh does, for one data dir.
func killall(ctx context.Context, args []string) error {
	fs := newFlagSet("k3slike killall")
	dataDir := fs.String("data-dir", agent.DefaultDataDir, "folder the stopped server or agent kept its state in")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	return agent.Killall(ctx, dir)
}
