package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/k3sflags"
)

// Environment variables the manifests set from the downward API.
const (
	envNodeName       = "NODE_NAME"       // spec.nodeName
	envNodeIP         = "NODE_IP"         // status.hostIP
	envPodNamespace   = "POD_NAMESPACE"   // metadata.namespace
	envServiceAccount = "SERVICE_ACCOUNT" // spec.serviceAccountName
	envPodName        = "POD_NAME"        // metadata.name
)

// controllersConfig is `k3snet controllers`'s command line.
type controllersConfig struct {
	kubeconfig     string
	cluster        compose.ClusterSettings
	leaseNamespace string
	// podName names this replica in the Leases; see compose.LeaderIdentity.
	podName            string
	metricsBindAddress string
	// self is the pod's ServiceAccount, read at SIGTERM to tell an uninstall from a restart.
	self compose.ServiceAccountRef
}

// nodeConfig is `k3snet node`'s command line.
type nodeConfig struct {
	kubeconfig             string
	nodeName               string
	nodeIPs                []netip.Addr
	nodeExternalIPs        []netip.Addr
	serviceCIDRs           []netip.Prefix
	disableNetworkPolicy   bool
	disableCloudController bool
	metricsBindAddress     string
	self                   compose.ServiceAccountRef
}

// uninstallConfig is `k3snet uninstall`'s command line.
type uninstallConfig struct {
	kubeconfig         string
	namespace          string
	serviceLBNamespace string
}

// newFlagSet is a flag set whose usage goes to out and whose errors are returned.
func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// parse parses args and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func registerKubeconfig(fs *flag.FlagSet, kubeconfig *string) {
	fs.StringVar(kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: the pod's in-cluster config)")
}

func selfFrom(getenv func(string) string) compose.ServiceAccountRef {
	return compose.ServiceAccountRef{Namespace: getenv(envPodNamespace), Name: getenv(envServiceAccount)}
}

// parseControllersFlags parses `k3snet controllers`'s flags (after the command); getenv is
// passed in so the environment defaults can be tested.
func parseControllersFlags(args []string, getenv func(string) string, out io.Writer) (*controllersConfig, error) {
	fs := newFlagSet("k3snet controllers", out)
	var (
		cfg     controllersConfig
		cluster k3sflags.Cluster
		dataDir string
	)
	registerKubeconfig(fs, &cfg.kubeconfig)
	cluster.Register(fs)
	fs.StringVar(&dataDir, "data-dir", "/var/lib/k3snet", "folder to hold state: the packaged manifests are staged into <data-dir>/server/manifests")
	fs.StringVar(&cfg.leaseNamespace, "lease-namespace", "", "namespace of the controllers' Leases (default $"+envPodNamespace+", else kube-system)")
	fs.StringVar(&cfg.metricsBindAddress, "metrics-bind-address", ":10258", "address of /healthz, /readyz and /metrics")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	var errs k3sflags.Errors
	cfg.cluster = cluster.Settings(&errs)
	cfg.cluster.DataDir = k3sflags.DataDir(&errs, dataDir)
	// Beside the Deployment's pods, as K3s keeps its leases beside its controllers.
	cfg.leaseNamespace = cmp.Or(cfg.leaseNamespace, getenv(envPodNamespace), metav1.NamespaceSystem)
	errs.Add("lease-namespace", checkNamespace(cfg.leaseNamespace))
	errs.Add("metrics-bind-address", checkListenAddress(cfg.metricsBindAddress))
	cfg.self = selfFrom(getenv)
	cfg.podName = getenv(envPodName)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// parseNodeFlags parses `k3snet node`'s flags (after the command).
func parseNodeFlags(args []string, getenv func(string) string, out io.Writer) (*nodeConfig, error) {
	fs := newFlagSet("k3snet node", out)
	var (
		cfg                                 nodeConfig
		nodeIP, nodeExternalIP, serviceCIDR k3sflags.List
	)
	registerKubeconfig(fs, &cfg.kubeconfig)
	fs.StringVar(&cfg.nodeName, "node-name", getenv(envNodeName), "name of the node whose pods this instance protects ($"+envNodeName+")")
	k3sflags.RegisterNodeIPs(fs, &nodeIP, &nodeExternalIP)
	k3sflags.RegisterServiceCIDR(fs, &serviceCIDR)
	fs.BoolVar(&cfg.disableNetworkPolicy, "disable-network-policy", false, "do not enforce NetworkPolicies; remove the rules of an earlier run")
	fs.BoolVar(&cfg.disableCloudController, "disable-cloud-controller", false, "remove the node's address annotations instead of publishing them (an external cloud controller owns the addresses)")
	// Not 10259, kube-scheduler's port: the DaemonSet's pods share the nodes' network, control
	// planes included.
	fs.StringVar(&cfg.metricsBindAddress, "metrics-bind-address", ":10266", "address of /healthz, /readyz and /metrics")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	nodeIP.SetDefault(getenv(envNodeIP))
	var errs k3sflags.Errors
	cfg.nodeIPs, cfg.nodeExternalIPs = k3sflags.NodeIPs(&errs, nodeIP, nodeExternalIP)
	if len(nodeIP) == 0 && !cfg.disableCloudController {
		errs.Add("node-ip", errors.New("required (or "+envNodeIP+"): the node's address, for the cloud-controller stub"))
	}
	var err error
	cfg.serviceCIDRs, err = k3sflags.ParseCIDRs(serviceCIDR, k3sflags.DefaultServiceCIDR)
	errs.Add("service-cidr", err)
	if cfg.nodeName == "" {
		errs.Add("node-name", errors.New("required (or "+envNodeName+")"))
	} else if problems := validation.IsDNS1123Subdomain(cfg.nodeName); len(problems) > 0 {
		errs.Add("node-name", errors.New(strings.Join(problems, "; ")))
	}
	errs.Add("metrics-bind-address", checkListenAddress(cfg.metricsBindAddress))
	cfg.self = selfFrom(getenv)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// parseUninstallFlags parses `k3snet uninstall`'s flags (after the command).
func parseUninstallFlags(args []string, out io.Writer) (*uninstallConfig, error) {
	fs := newFlagSet("k3snet uninstall", out)
	var cfg uninstallConfig
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: the in-cluster config)")
	fs.StringVar(&cfg.namespace, "namespace", compose.DefaultNamespace, "namespace k3snet was installed in")
	fs.StringVar(&cfg.serviceLBNamespace, "servicelb-namespace", k3sflags.DefaultServiceLBNamespace, "namespace of the pods of the servicelb component")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	var errs k3sflags.Errors
	errs.Add("namespace", checkNamespace(cfg.namespace))
	errs.Add("servicelb-namespace", checkNamespace(cfg.serviceLBNamespace))
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func checkNamespace(ns string) error {
	if problems := validation.IsDNS1123Label(ns); len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// checkListenAddress accepts host:port with an optional host, as net.Listen does.
func checkListenAddress(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return err
	}
	return nil
}
