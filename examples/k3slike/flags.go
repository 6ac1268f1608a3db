package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/k3sflags"
)

// config is the parsed and validated command line: K3s's server flags that k3snet uses, with
// K3s's names and defaults.
type config struct {
	dataDir                string
	kubeconfig             string
	disable                []string // items of --disable, split on commas, trimmed, deduplicated
	disableNetworkPolicy   bool
	disableCloudController bool
	multiClusterCIDR       bool
	// disableNodeIPAM, disableDeploy and disableHelmController leave node pod CIDRs, the
	// packaged manifests and HelmCharts to controllers installed on the cluster (deploy/).
	disableNodeIPAM       bool
	disableDeploy         bool
	disableHelmController bool
	// reservedHostPorts are node ports ServiceLB refuses (--servicelb-reserved-host-ports).
	reservedHostPorts     []int32
	clusterCIDRs          []netip.Prefix
	serviceCIDRs          []netip.Prefix
	clusterDNS            []netip.Addr
	clusterDomain         string
	serviceLBNamespace    string
	nodeName              string
	nodeIPs               []netip.Addr
	nodeExternalIPs       []netip.Addr
	systemDefaultRegistry string
	httpsListenPort       int
	binDir                string
	metricsBindAddress    string

	// The node half (K3s's agent flags): the server runs one on its own node unless
	// disableAgent; `k3slike agent` runs only this half and joins serverURL with token.
	disableAgent  bool
	nodeBinDir    string
	nodeLabels    []string
	nodeTaints    []string
	kubeletArgs   []string
	kubeProxyArgs []string
	serverURL     string
	token         string

	// K3s server flags of the embedded API server, the server's own node and its kubeconfig
	// (registered in flags_network.go).
	serviceNodePortRange      string     // --service-node-port-range, as "30000-32767"
	nodeInternalDNS           []string   // --node-internal-dns
	nodeExternalDNS           []string   // --node-external-dns
	kubeControllerManagerArgs []string   // --kube-controller-manager-arg (name=value)
	writeKubeconfig           string     // --write-kubeconfig, -o
	writeKubeconfigMode       string     // --write-kubeconfig-mode, octal as "0644"
	bindAddress               netip.Addr // --bind-address; invalid means the default
	advertiseAddress          netip.Addr // --advertise-address; invalid means the node IP
	tlsSANs                   []string   // --tls-san: extra names or IPs of the serving certificate
}

// disabled reports whether item was named in --disable.
func (c *config) disabled(item string) bool { return slices.Contains(c.disable, item) }

// parseFlags parses args (without the program name). getenv and hostname are passed in so the
// node-name rules can be tested.
func parseFlags(args []string, getenv func(string) string, hostname func() (string, error), out io.Writer) (*config, error) {
	fs := flag.NewFlagSet("k3slike", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		cfg                    config
		cluster                k3sflags.Cluster
		nodeIP, nodeExternalIP k3sflags.List
	)
	fs.StringVar(&cfg.dataDir, "data-dir", "/var/lib/rancher/k3s", "folder to hold state")
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig of an existing cluster; without it k3slike runs its own control plane")
	cluster.Register(fs)
	fs.BoolVar(&cfg.disableNetworkPolicy, "disable-network-policy", false, "disable the network policy controller")
	fs.StringVar(&cfg.nodeName, "node-name", "", "node name (default $K3S_NODE_NAME, else the hostname)")
	k3sflags.RegisterNodeIPs(fs, &nodeIP, &nodeExternalIP)
	fs.IntVar(&cfg.httpsListenPort, "https-listen-port", 6443, "port of the embedded kube-apiserver on 127.0.0.1")
	fs.StringVar(&cfg.metricsBindAddress, "metrics-bind-address", "127.0.0.1:10258", "address of /healthz, /readyz and /metrics")
	fs.StringVar(&cfg.binDir, "bin-dir", "", "directory of the control-plane binaries, kubelet and kube-proxy (default $K3SNET_BIN_DIR, else the build cache of hack/build-tools.sh)")
	fs.BoolVar(&cfg.disableAgent, "disable-agent", false, "do not run a kubelet, containerd and kube-proxy on this node; kwok simulates the server's node instead")
	var node nodeFlags
	node.register(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	node.apply(&cfg)
	if cfg.kubeconfig != "" {
		// Someone else's cluster: its nodes have their own kubelets.
		cfg.disableAgent = true
	}

	var errs k3sflags.Errors
	s := cluster.Settings(&errs)
	cfg.disable, cfg.disableCloudController, cfg.multiClusterCIDR = s.Disable, s.DisableCloudController, s.MultiClusterCIDR
	cfg.disableNodeIPAM, cfg.disableDeploy, cfg.disableHelmController = s.DisableNodeIPAM, s.DisableDeploy, s.DisableHelmController
	cfg.reservedHostPorts = s.ServiceLBReservedHostPorts
	cfg.clusterCIDRs, cfg.serviceCIDRs, cfg.clusterDNS = s.ClusterCIDRs, s.ServiceCIDRs, s.ClusterDNS
	cfg.clusterDomain, cfg.serviceLBNamespace, cfg.systemDefaultRegistry = s.ClusterDomain, s.ServiceLBNamespace, s.SystemDefaultRegistry
	cfg.nodeIPs, cfg.nodeExternalIPs = k3sflags.NodeIPs(&errs, nodeIP, nodeExternalIP)
	errs = append(errs, node.validate()...)
	if cfg.httpsListenPort < 1 || cfg.httpsListenPort > 65535 {
		errs.Add("https-listen-port", fmt.Errorf("%d is not a port", cfg.httpsListenPort))
	}
	cfg.dataDir = k3sflags.DataDir(&errs, cfg.dataDir)
	var err error
	cfg.nodeName, err = ccmstub.ResolveNodeName(cfg.nodeName, getenv, hostname)
	errs.Add("node-name", err)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func osHostname() (string, error) { return os.Hostname() }

// newFlagSet is a flag set whose usage goes to stderr and whose errors are returned.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// nodeFlags are the flags of the node half that server and agent share, as K3s's agent flags
// appear on both `k3s server` and `k3s agent`.
type nodeFlags struct {
	labels, taints, kubeletArgs, kubeProxyArgs k3sflags.List
}

func (n *nodeFlags) register(fs *flag.FlagSet, cfg *config) {
	fs.Var(&n.labels, "node-label", "label to register the node with (key=value); repeatable")
	fs.Var(&n.taints, "node-taint", "taint to register the node with (key=value:Effect); repeatable")
	fs.Var(&n.kubeletArgs, "kubelet-arg", "customized flag for the kubelet (name=value, without dashes); repeatable")
	fs.Var(&n.kubeProxyArgs, "kube-proxy-arg", "customized flag for kube-proxy (name=value, without dashes); repeatable")
	fs.StringVar(&cfg.nodeBinDir, "node-bin-dir", "", "directory of containerd, runc and the CNI plugins (default $K3SNET_NODE_BIN_DIR, else the build cache of hack/build-node.sh)")
}

func (n *nodeFlags) apply(cfg *config) {
	cfg.nodeLabels, cfg.nodeTaints = n.labels, n.taints
	cfg.kubeletArgs, cfg.kubeProxyArgs = n.kubeletArgs, n.kubeProxyArgs
}

// validate checks labels, taints and extra arguments, each error naming its flag.
func (n *nodeFlags) validate() []error {
	var errs []error
	for _, l := range n.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
			errs = append(errs, &k3sflags.Error{Flag: "node-label", Err: fmt.Errorf("%q is not key=value with a valid label key and value", l)})
		}
	}
	for _, t := range n.taints {
		if err := checkTaint(t); err != nil {
			errs = append(errs, &k3sflags.Error{Flag: "node-taint", Err: err})
		}
	}
	for _, f := range []struct {
		flag string
		args []string
	}{{"kubelet-arg", n.kubeletArgs}, {"kube-proxy-arg", n.kubeProxyArgs}} {
		for _, a := range f.args {
			if name, _, _ := strings.Cut(a, "="); name == "" || strings.HasPrefix(name, "-") {
				errs = append(errs, &k3sflags.Error{Flag: f.flag, Err: fmt.Errorf("%q: want name=value, without dashes", a)})
			}
		}
	}
	return errs
}

// checkTaint accepts K3s's --node-taint form, key[=value]:Effect.
func checkTaint(t string) error {
	kv, effect, ok := strings.Cut(t, ":")
	if !ok {
		return fmt.Errorf("%q: want key=value:Effect", t)
	}
	switch effect {
	case "NoSchedule", "PreferNoSchedule", "NoExecute":
	default:
		return fmt.Errorf("%q: effect must be NoSchedule, PreferNoSchedule or NoExecute", t)
	}
	k, v, _ := strings.Cut(kv, "=")
	if len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
		return fmt.Errorf("%q: invalid taint key or value", t)
	}
	return nil
}

// parseAgentFlags parses `k3slike agent`'s flags (without the program name and command), as
// `k3s agent` takes them: --server and --token (or K3S_URL and K3S_TOKEN), the node's name,
// addresses, labels and taints. The cluster's settings come from the server when it joins.
func parseAgentFlags(args []string, getenv func(string) string, hostname func() (string, error), out io.Writer) (*config, error) {
	fs := flag.NewFlagSet("k3slike agent", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		cfg                    config
		nodeIP, nodeExternalIP k3sflags.List
		node                   nodeFlags
		tokenFile              string
	)
	fs.StringVar(&cfg.serverURL, "server", getenv("K3S_URL"), "server to connect to, https://host:6443 ($K3S_URL)")
	fs.StringVar(&cfg.token, "token", getenv("K3S_TOKEN"), "token to join with, the server's <data-dir>/server/node-token ($K3S_TOKEN)")
	fs.StringVar(&tokenFile, "token-file", getenv("K3S_TOKEN_FILE"), "file holding the token ($K3S_TOKEN_FILE)")
	fs.StringVar(&cfg.dataDir, "data-dir", "/var/lib/rancher/k3s", "folder to hold state")
	fs.StringVar(&cfg.nodeName, "node-name", "", "node name (default $K3S_NODE_NAME, else the hostname)")
	k3sflags.RegisterNodeIPs(fs, &nodeIP, &nodeExternalIP)
	fs.StringVar(&cfg.binDir, "bin-dir", "", "directory of kubelet and kube-proxy (default $K3SNET_BIN_DIR, else the build cache of hack/build-tools.sh)")
	node.register(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	node.apply(&cfg)
	var errs k3sflags.Errors
	add := errs.Add
	if cfg.token == "" && tokenFile != "" {
		data, err := os.ReadFile(tokenFile)
		add("token-file", err)
		cfg.token = strings.TrimSpace(string(data))
	}
	if cfg.serverURL == "" {
		add("server", errors.New("required (or K3S_URL): the https URL of a server, such as https://10.0.0.1:6443"))
	} else if u, err := url.Parse(cfg.serverURL); err != nil || u.Scheme != "https" || u.Host == "" {
		add("server", fmt.Errorf("%q is not an https URL such as https://10.0.0.1:6443", cfg.serverURL))
	}
	if cfg.token == "" {
		add("token", errors.New("required (or K3S_TOKEN): the contents of the server's <data-dir>/server/node-token"))
	}
	cfg.nodeIPs, cfg.nodeExternalIPs = k3sflags.NodeIPs(&errs, nodeIP, nodeExternalIP)
	errs = append(errs, node.validate()...)
	cfg.dataDir = k3sflags.DataDir(&errs, cfg.dataDir)
	var err error
	cfg.nodeName, err = ccmstub.ResolveNodeName(cfg.nodeName, getenv, hostname)
	add("node-name", err)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}
