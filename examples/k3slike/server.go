package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/clusterwide"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/controlplane"
)

// serve runs until ctx ends: the embedded control plane (or the cluster of --kubeconfig), the
// server's own node, and the controllers.
func serve(ctx context.Context, cfg *config) (err error) {
	logger := klog.FromContext(ctx)
	// A node process that dies ends the server too, as in K3s; its controllers then stop and
	// release their Leases as at a SIGTERM.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	restConfig, kubeconfig := (*rest.Config)(nil), cfg.kubeconfig
	var cp *controlplane.ControlPlane
	if !cfg.disableAgent {
		// Say at once, before the control plane starts, when this machine cannot be a node.
		if _, _, err := nodePreflight(cfg); err != nil {
			return fmt.Errorf("%w; start with --disable-agent to run the server without a real node (kwok simulates it)", err)
		}
	}
	if cfg.kubeconfig != "" {
		restConfig, err = compose.ClientConfig(cfg.kubeconfig)
		if err != nil {
			return err
		}
	} else {
		start := time.Now()
		var kcm controllerManagerArgs
		if kcm, err = parseControllerManagerArgs(cfg.kubeControllerManagerArgs, cfg.clusterCIDRs); err != nil {
			return fmt.Errorf("invalid --kube-controller-manager-arg: %w", err)
		}
		bind, advertise := apiServerAddresses(cfg)
		servingIPs, servingNames := servingSANs(cfg)
		cpConfig := controlplane.Config{
			DataDir:       filepath.Join(cfg.dataDir, "server"),
			BinDir:        cfg.binDir,
			APIServerPort: cfg.httpsListenPort,
			// Every family's range, dual-stack included.
			ServiceCIDR:                strings.Join(compose.Strings(cfg.serviceCIDRs), ","),
			PodCIDR:                    cfg.clusterCIDRs[0].String(),
			BindAddress:                bind,
			AdvertiseAddress:           advertise,
			ServingIPs:                 servingIPs,
			ServingNames:               servingNames,
			ServiceNodePortRange:       cfg.serviceNodePortRange,
			ExtraControllerManagerArgs: kcm.extra,
			// A real node has no simulated node to run.
			DisableKwok: !cfg.disableAgent,
		}
		cp, err = controlplane.Start(ctx, cpConfig)
		if err != nil {
			return fmt.Errorf("starting the embedded control plane: %w", err)
		}
		defer func() {
			logger.Info("Stopping the embedded control plane")
			err = errors.Join(err, cp.Stop())
		}()
		logger.Info("Embedded control plane is up", "url", cp.URL, "took", time.Since(start).Round(time.Millisecond))
		restConfig, kubeconfig = cp.Config, cp.AdminKubeconfig
		if cfg.writeKubeconfig != "" {
			if err := writeAdminKubeconfig(cp, cfg, bind); err != nil {
				return err
			}
			kubeconfig = cfg.writeKubeconfig
		}
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("building the client: %w", err)
	}
	version, err := client.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("reaching the API server at %s: %w", restConfig.Host, err)
	}
	stopClusterCIDRAlphaAPI, err := startClusterCIDRAlphaAPI(ctx, cfg, cp, restConfig)
	if err != nil {
		return err
	}
	defer stopClusterCIDRAlphaAPI()
	var node *serverNode
	switch {
	case cfg.kubeconfig != "":
		if err := annotateExistingNode(ctx, client, cfg); err != nil {
			return err
		}
	case cfg.disableAgent:
		if err := registerNode(ctx, client, cfg, kwokNudgeAfter); err != nil {
			return err
		}
		if err := annotateOwnNode(ctx, client, cfg); err != nil {
			return err
		}
	default:
		if node, err = startServerNode(ctx, cfg, cp, client); err != nil {
			return err
		}
	}
	reg := compose.NewControllerMetrics()
	controllers, err := clusterwide.Controllers(ctx, cfg.controllerSettings(), restConfig, client, reg)
	if err != nil {
		return err
	}
	controllers = append(controllers, serverNetworkPolicy(ctx, cfg, client, reg)...)
	if node != nil {
		controllers = append(controllers, nodeControllers(cfg, serverClusterSettings(cfg), node.controllerClient, reg)...)
		controllers = append(controllers, approverController(client))
	}
	waitControllers, err := compose.RunWithHealth(ctx, client, leases(), controllers, cfg.metricsBindAddress, reg)
	if err != nil {
		return err
	}
	logger.Info("k3slike is ready", "node", cfg.nodeName, "kubernetes", version.GitVersion,
		"kubectl", fmt.Sprintf("export KUBECONFIG=%s; kubectl get nodes", kubeconfig))
	var nodeErr error
	if node != nil {
		nodeErr = runUntilDone(ctx, node.agent)
		cancel(nodeErr)
	} else {
		<-ctx.Done()
	}
	logger.Info("Shutting down", "reason", context.Cause(ctx))
	compose.AwaitStopped(ctx, waitControllers)
	return nodeErr
}

// annotateExistingNode publishes the addresses of --node-name when that Node is already in the
// --kubeconfig cluster, as the agent beside a joining K3s server does. In someone else's
// cluster the Node's kubelet registers it, so a missing Node is not an error.
func annotateExistingNode(ctx context.Context, client kubernetes.Interface, cfg *config) error {
	_, err := client.CoreV1().Nodes().Get(ctx, cfg.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Info("Node is not registered in this cluster; its address annotations are left to its agent", "node", cfg.nodeName)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading node %s: %w", cfg.nodeName, err)
	}
	return annotateOwnNode(ctx, client, cfg)
}

// registerNode creates (or, after a restart, keeps) the server's own Node as a kwok-managed
// node, as the kubelet of a K3s agent does: with the cloud controller on, the kubelet runs with
// --cloud-provider=external, so the Node starts with the uninitialized taint and the stub fills
// its addresses from the annotations; with it off, the kubelet reports its addresses itself.
// It waits for kwok to report the Node Ready, touching it every nudgeAfter until then.
func registerNode(ctx context.Context, client kubernetes.Interface, cfg *config, nudgeAfter time.Duration) error {
	nodes := client.CoreV1().Nodes()
	// --node-label and --node-taint as a kubelet registers them; the labels are applied again
	// to a Node that already exists, as K3s does at a restart.
	labels := registrationLabels(cfg.nodeLabels)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        cfg.nodeName,
		Labels:      map[string]string{},
		Annotations: map[string]string{controlplane.KwokNodeAnnotation: controlplane.KwokNodeAnnotationValue},
	}}
	maps.Copy(node.Labels, labels)
	maps.Copy(node.Labels, map[string]string{
		corev1.LabelHostname:                    cfg.nodeName,
		corev1.LabelOSStable:                    runtime.GOOS,
		corev1.LabelArchStable:                  runtime.GOARCH,
		"node-role.kubernetes.io/control-plane": "true",
	})
	if !cfg.disableCloudController {
		node.Spec.Taints = []corev1.Taint{{Key: ccmstub.UninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	}
	node.Spec.Taints = append(node.Spec.Taints, registrationTaints(cfg.nodeTaints)...)
	_, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) && len(labels) > 0 {
		var patch []byte
		if patch, err = json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}}); err == nil {
			_, err = nodes.Patch(ctx, cfg.nodeName, types.MergePatchType, patch, metav1.PatchOptions{})
		}
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("registering node %s: %w", cfg.nodeName, err)
	}
	// last is the node's Ready condition as last seen, for the error when it never turns True.
	last := "no Ready condition"
	nudged := time.Now()
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, cfg.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if time.Since(nudged) > nudgeAfter {
			// Once, on a loaded CI machine, the node was not Ready a minute after a start
			// (cause unknown; kwok initializes it). An update makes kwok evaluate the Node's
			// stages again, which is cheap insurance.
			nudged = time.Now()
			klog.FromContext(ctx).Info("Own node not Ready yet; touching it so kwok sees it again", "node", cfg.nodeName, "last", last)
			patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
				kwokNudgeAnnotation: nudged.UTC().Format(time.RFC3339Nano)}}})
			if err != nil {
				return false, err
			}
			if _, err := nodes.Patch(ctx, cfg.nodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return false, err
			}
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				last = fmt.Sprintf("Ready %s (reason %q, heartbeat %s, transition %s)", c.Status, c.Reason,
					c.LastHeartbeatTime.UTC().Format(time.RFC3339), c.LastTransitionTime.UTC().Format(time.RFC3339))
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for node %s to be Ready (last seen: %s): %w", cfg.nodeName, last, err)
	}
	if !cfg.disableCloudController {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"addresses": nodeAddresses(cfg)}})
	if err != nil {
		return err
	}
	if _, err := nodes.Patch(ctx, cfg.nodeName, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("setting addresses of node %s: %w", cfg.nodeName, err)
	}
	return nil
}

// kwokNudgeAfter is how long registerNode waits for kwok to report the node Ready before
// touching the Node (kwokNudgeAnnotation) so that kwok looks at it again.
const (
	kwokNudgeAfter      = 10 * time.Second
	kwokNudgeAnnotation = "k3slike.k3snet.io/kwok-nudged-at"
)

// nodeAddresses lists the node's addresses in K3s's order: internal, external, hostname.
func nodeAddresses(cfg *config) []corev1.NodeAddress {
	var out []corev1.NodeAddress
	for _, ip := range nodeInternalIPs(cfg) {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
	}
	for _, ip := range cfg.nodeExternalIPs {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip.String()})
	}
	return append(out, corev1.NodeAddress{Type: corev1.NodeHostName, Address: cfg.nodeName})
}

// nodeInternalIPs is --node-ip, else the host's address.
func nodeInternalIPs(cfg *config) []netip.Addr {
	if len(cfg.nodeIPs) > 0 {
		return cfg.nodeIPs
	}
	return []netip.Addr{defaultNodeIP()}
}
