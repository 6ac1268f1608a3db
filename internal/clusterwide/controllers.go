package clusterwide

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/clustercidr"
	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/packaged"
	"github.com/k3snet/k3snet/packaged/helmjob"
	"github.com/k3snet/k3snet/servicelb"
)

// Controllers returns the controllers of the whole cluster that s enables, each under a
// Lease but the deploy controller, which every server runs, after doing at once what the
// disable switches ask of the cluster, as a K3s server does at start: --disable=servicelb
// removes every LB DaemonSet, and the packaged manifests --disable does not name are staged.
func Controllers(ctx context.Context, s compose.ClusterSettings, restConfig *rest.Config, client kubernetes.Interface, reg *compose.ControllerMetrics) ([]compose.Controller, error) {
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("building the dynamic client: %w", err)
	}
	lbOff := s.Disabled("servicelb")
	if lbOff {
		if err := servicelb.Cleanup(ctx, client, s.ServiceLBNamespace); err != nil {
			return nil, fmt.Errorf("--disable=servicelb: removing ServiceLB's DaemonSets: %w", err)
		}
		klog.FromContext(ctx).Info("ServiceLB disabled; its DaemonSets are removed", "namespace", s.ServiceLBNamespace)
	}
	var out []compose.Controller
	// The stub runs when either of its parts is on; with both off K3s runs no CCM at all.
	if !s.DisableCloudController || !lbOff {
		out = append(out, cloudController(s, client, reg))
	}
	if !s.DisableNodeIPAM {
		out = append(out, nodeIPAM(s, client, dyn, reg))
	}
	if !s.DisableDeploy {
		deploy, err := stagePackaged(ctx, s, dyn)
		if err != nil {
			return nil, err
		}
		out = append(out, deployController(client, deploy, reg))
		if leased, ok := leasedPackaged(s, restConfig, client, deploy, reg); ok {
			out = append(out, leased)
		}
	}
	return out, nil
}

// cloudController is the cloud-controller stub, with ServiceLB as its load balancer unless
// --disable=servicelb.
func cloudController(s compose.ClusterSettings, client kubernetes.Interface, reg *compose.ControllerMetrics) compose.Controller {
	lbOff := s.Disabled("servicelb")
	return compose.Controller{Name: "cloud-controller", ClusterWide: true, Start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		var lb ccmstub.LoadBalancer
		if !lbOff {
			slb, err := servicelb.New(client, servicelb.Options{
				Namespace:             s.ServiceLBNamespace,
				SystemDefaultRegistry: s.SystemDefaultRegistry,
				ReservedHostPorts:     s.ServiceLBReservedHostPorts,
				MetricsRegistry:       reg.Fresh("servicelb"),
			})
			if err != nil {
				return err
			}
			lb = slb
		}
		stub, err := ccmstub.New(client, ccmstub.Options{
			DisableNodes:        s.DisableCloudController,
			DisableLoadBalancer: lbOff,
			LoadBalancer:        lb,
			MetricsRegistry:     reg.Fresh("ccmstub"),
		})
		if err != nil {
			return err
		}
		return stub.Start(ctx, f)
	}, ReadsNoPods: true}
}

// nodeIPAM allocates the Nodes' pod CIDRs, from ClusterCIDR objects with --multi-cluster-cidr.
func nodeIPAM(s compose.ClusterSettings, client kubernetes.Interface, dyn dynamic.Interface, reg *compose.ControllerMetrics) compose.Controller {
	return compose.Controller{Name: "clustercidr", ClusterWide: true, Start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		ipam, err := clustercidr.New(client, clustercidr.Options{
			ClusterCIDRs:         s.ClusterCIDRs,
			ServiceCIDRs:         s.ServiceCIDRs,
			MultiClusterCIDR:     s.MultiClusterCIDR,
			NodeCIDRMaskSizeIPv4: s.NodeCIDRMaskSizeIPv4,
			NodeCIDRMaskSizeIPv6: s.NodeCIDRMaskSizeIPv6,
			Dynamic:              dyn,
			MetricsRegistry:      reg.Fresh("clustercidr"),
		})
		if err != nil {
			return err
		}
		return ipam.Start(ctx, f)
	}, ReadsNoPods: true}
}

// deployController applies this server's manifests directory. It runs on every server, not
// under a Lease, as in K3s: each server's directory is its own, a file only one server has is
// applied by that server, and servers applying the same file agree through server-side apply
// with one field manager and the checksum on the Addon.
func deployController(client kubernetes.Interface, deploy packaged.Options, reg *compose.ControllerMetrics) compose.Controller {
	deploy.DisableNodeHosts = true
	return compose.Controller{Name: "deploy", Start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		// No Lease retries a failed start here, and a server whose API server was not yet
		// reachable would never apply its directory.
		for {
			deploy.MetricsRegistry = reg.Fresh("deploy")
			d, err := packaged.New(client, deploy)
			if err == nil {
				if err = d.Start(ctx, f); err == nil {
					return nil
				}
			}
			klog.FromContext(ctx).Error(err, "Starting the deploy controller failed; retrying", "after", compose.FailedStartBackoff)
			select {
			case <-ctx.Done():
				return err
			case <-time.After(compose.FailedStartBackoff):
			}
		}
	}, ReadsNoPods: true}
}

// defaultAPIServerPort is where the jobs of bootstrap charts find the API server when the
// settings name no port: K3s's and kubeadm's.
const defaultAPIServerPort = 6443

// leasedPackaged keeps NodeHosts (unless --disable=coredns) and, unless
// --disable-helm-controller, installs the HelmCharts, on one server at a time as K3s's leader
// does. It reports false when neither is on.
func leasedPackaged(s compose.ClusterSettings, restConfig *rest.Config, client kubernetes.Interface, deploy packaged.Options, reg *compose.ControllerMetrics) (compose.Controller, bool) {
	if s.Disabled("coredns") && s.DisableHelmController {
		return compose.Controller{}, false
	}
	deploy.DisableDeploy = true
	return compose.Controller{Name: "packaged", ClusterWide: true, Start: func(ctx context.Context, f informers.SharedInformerFactory) error {
		// A new term as leader gets a new controller: a Controller is started once. Its
		// Start installs the HelmChart CRDs, which the Helm controller needs first.
		nodeHosts, err := packaged.New(client, deploy)
		if err != nil {
			return err
		}
		if err := nodeHosts.Start(ctx, f); err != nil {
			return err
		}
		if s.DisableHelmController {
			return nil
		}
		// As in K3s, each chart runs in a helm-install Job on the klipper-helm image: this
		// process links no Helm, and a chart's work is done in its job's pod.
		charts, err := helmjob.New(client, helmjob.Options{
			Config:    restConfig,
			StaticDir: filepath.Join(s.DataDir, "server", "static"),
			Job: helmjob.JobOptions{
				Image:         helmjob.JobImage(s.HelmJobImage, s.SystemDefaultRegistry),
				APIServerPort: cmp.Or(s.APIServerPort, defaultAPIServerPort),
				ProxyEnv:      helmjob.ProxyEnv(os.Environ()),
			},
			MetricsRegistry: reg.Fresh("helm"),
		})
		if err != nil {
			return err
		}
		return charts.Start(ctx, f)
	}, ReadsNoPods: true}, true
}
