package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/clustercidr"
	"github.com/k3snet/k3snet/internal/controlplane"
	"github.com/k3snet/k3snet/internal/nodejoin"
	"github.com/k3snet/k3snet/netpol"
	"github.com/k3snet/k3snet/packaged"
	"github.com/k3snet/k3snet/servicelb"
)

// serverScopedFactory ties every informer to the server's lifetime. Controllers start the
// shared factory with their own context, which under leader election ends with the lease;
// a factory never restarts an informer whose stop channel closed, so a second term as
// leader would run on dead caches.
type serverScopedFactory struct {
	informers.SharedInformerFactory
	stop <-chan struct{}
}

func (f serverScopedFactory) Start(<-chan struct{}) { f.SharedInformerFactory.Start(f.stop) }

// controller is one controller of the server: cluster-wide ones run under a Lease of their
// own, node-local ones on every instance. start builds a new instance at every call, since a
// Controller is started once and a server may lead several terms.
type controller struct {
	name        string
	clusterWide bool
	start       func(context.Context, informers.SharedInformerFactory) error
}

// buildControllers returns the controllers cfg enables, after doing what the disable switches
// ask of the cluster (K3s spec 1.1 and A.5).
func buildControllers(ctx context.Context, cfg *config, restConfig *rest.Config, client kubernetes.Interface, reg *controllerMetrics) ([]controller, error) {
	logger := klog.FromContext(ctx)
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("building the dynamic client: %w", err)
	}
	lbOff := cfg.disabled("servicelb")
	if lbOff {
		if err := servicelb.Cleanup(ctx, client, cfg.serviceLBNamespace); err != nil {
			return nil, fmt.Errorf("--disable=servicelb: removing ServiceLB's DaemonSets: %w", err)
		}
		logger.Info("ServiceLB disabled; its DaemonSets are removed", "namespace", cfg.serviceLBNamespace)
	}
	var out []controller
	// The stub runs when either of its parts is on; with both off K3s runs no CCM at all.
	if !cfg.disableCloudController || !lbOff {
		out = append(out, controller{name: "cloud-controller", clusterWide: true, start: func(ctx context.Context, f informers.SharedInformerFactory) error {
			var lb ccmstub.LoadBalancer
			if !lbOff {
				slb, err := servicelb.New(client, servicelb.Options{
					Namespace:             cfg.serviceLBNamespace,
					SystemDefaultRegistry: cfg.systemDefaultRegistry,
					MetricsRegistry:       reg.fresh("servicelb"),
				})
				if err != nil {
					return err
				}
				lb = slb
			}
			stub, err := ccmstub.New(client, ccmstub.Options{
				DisableNodes:        cfg.disableCloudController,
				DisableLoadBalancer: lbOff,
				LoadBalancer:        lb,
				MetricsRegistry:     reg.fresh("ccmstub"),
			})
			if err != nil {
				return err
			}
			return stub.Start(ctx, f)
		}})
	}

	out = append(out, controller{name: "clustercidr", clusterWide: true, start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		ipam, err := clustercidr.New(client, clustercidr.Options{
			ClusterCIDRs:     prefixStrings(cfg.clusterCIDRs),
			ServiceCIDRs:     prefixStrings(cfg.serviceCIDRs),
			MultiClusterCIDR: cfg.multiClusterCIDR,
			DynamicClient:    dyn,
			MetricsRegistry:  reg.fresh("clustercidr"),
		})
		if err != nil {
			return err
		}
		return ipam.Start(ctx, f)
	}})

	// NetworkPolicy enforcement is node-local: every server programs its own node (with a
	// real node, as part of the node's controllers).
	if cfg.disableNetworkPolicy {
		if err := netpol.Cleanup(ctx); err != nil {
			// Leftover rules keep enforcing the last policies; the server still serves.
			logger.Error(err, "--disable-network-policy: removing the network policy rules failed")
		}
	} else if cfg.disableAgent || cfg.kubeconfig != "" {
		out = append(out, controller{name: "netpol", start: func(ctx context.Context, f informers.SharedInformerFactory) error {
			np, err := netpol.New(client, netpol.Options{NodeName: cfg.nodeName, ServiceCIDRs: cfg.serviceCIDRs, MetricsRegistry: reg.fresh("netpol")})
			if err != nil {
				return err
			}
			return np.Start(ctx, f)
		}})
	}

	deploy, err := stagePackaged(ctx, cfg, dyn)
	if err != nil {
		return nil, err
	}
	out = append(out, controller{name: "deploy", clusterWide: true, start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		// A new term as leader gets a new controller: a Controller is started once.
		d, err := packaged.New(client, deploy)
		if err != nil {
			return err
		}
		// The deploy controller installs the HelmChart CRDs, so the helm controller, which
		// installs what the HelmCharts name (Traefik), starts after it in the same term.
		if err := d.Start(ctx, f); err != nil {
			return err
		}
		// K3s's own manifests name their charts https://%{KUBERNETES_API}%/static/...: files
		// of <data-dir>/server/static, read from disk here.
		helm, err := packaged.NewHelmController(client, packaged.HelmOptions{Config: restConfig,
			StaticDir: filepath.Join(cfg.dataDir, "server", "static")})
		if err != nil {
			return err
		}
		return helm.Start(ctx, f)
	}})
	return out, nil
}

func prefixStrings(prefixes []netip.Prefix) []string {
	out := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, p.String())
	}
	return out
}

// stagePackaged writes the packaged manifests (CoreDNS, Traefik) that --disable does not name
// into <data-dir>/server/manifests, as every K3s server does at start, and returns the deploy
// controller's options to apply that directory and uninstall what --disable names (spec A.2, A.5).
func stagePackaged(ctx context.Context, cfg *config, dyn dynamic.Interface) (packaged.Options, error) {
	disables := map[string]bool{}
	for _, item := range cfg.disable {
		disables[item] = true
	}
	skips := maps.Clone(disables)
	// An existing Traefik v1 is left alone rather than upgraded (spec A.11): not staged, and
	// not uninstalled either.
	if v1, err := packaged.TraefikV1Installed(ctx, dyn, nil); err != nil {
		return packaged.Options{}, err
	} else if v1 {
		skips["traefik"] = true
	}
	dir := filepath.Join(cfg.dataDir, "server", "manifests")
	vars := packaged.Vars{ClusterDNS: cfg.clusterDNS, ClusterDomain: cfg.clusterDomain, SystemDefaultRegistry: cfg.systemDefaultRegistry}
	if err := packaged.Stage(dir, vars, skips); err != nil {
		return packaged.Options{}, fmt.Errorf("staging the packaged manifests into %s: %w", dir, err)
	}
	return packaged.Options{ManifestsDir: dir, Dynamic: dyn, Disables: disables}, nil
}

// runControllers starts every controller and returns a function that waits, once ctx has
// ended, until they have stopped and released their Leases: a server that exits before the
// release leaves its peers waiting out the lease duration.
func runControllers(ctx context.Context, client kubernetes.Interface, controllers []controller, status *readiness) func() {
	factory := serverScopedFactory{SharedInformerFactory: informers.NewSharedInformerFactory(client, 0), stop: ctx.Done()}
	var running sync.WaitGroup
	identity := leaderIdentity()
	for _, c := range controllers {
		if c.clusterWide {
			running.Go(func() {
				runAsLeader(ctx, client, identity, c.name, status, func(ctx context.Context) error { return c.start(ctx, factory) })
			})
			continue
		}
		go func() { status.set(c.name, c.start(ctx, factory)) }()
	}
	return running.Wait
}

// annotateOwnNode publishes the node's addresses for the stub, retrying until the Node exists
// and the patch lands, as the K3s agent does.
func annotateOwnNode(ctx context.Context, client kubernetes.Interface, cfg *config) error {
	nc := ccmstub.NodeConfig{
		Name:                   cfg.nodeName,
		InternalIPs:            nodeInternalIPs(cfg),
		ExternalIPs:            cfg.nodeExternalIPs,
		DisableCloudController: cfg.disableCloudController,
	}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = ccmstub.AnnotateNode(ctx, client, nc)
		if last != nil && !apierrors.IsNotFound(last) && !apierrors.IsConflict(last) {
			return false, last
		}
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("annotating node %s: %w", cfg.nodeName, errors.Join(err, last))
	}
	return nil
}

// approverController approves the client certificates joining agents request for their
// kube-proxy and node controllers; the kubelets' own are approved by the controller manager.
func approverController(client kubernetes.Interface) controller {
	return controller{name: "node-csr-approver", clusterWide: true, start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		a, err := nodejoin.NewApprover(client, nodejoin.ApproverOptions{})
		if err != nil {
			return err
		}
		return a.Start(ctx, f)
	}}
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// resolveBinDir is --bin-dir, else where hack/build-tools.sh put the binaries.
func resolveBinDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return controlplane.FindBinDir()
}
