package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/k3snet/k3snet/ccmstub"
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
	clusterCIDRs           []netip.Prefix
	serviceCIDRs           []netip.Prefix
	clusterDNS             []netip.Addr
	clusterDomain          string
	serviceLBNamespace     string
	nodeName               string
	nodeIPs                []netip.Addr
	nodeExternalIPs        []netip.Addr
	systemDefaultRegistry  string
	httpsListenPort        int
	binDir                 string
	metricsBindAddress     string

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
}

// disabled reports whether item was named in --disable.
func (c *config) disabled(item string) bool { return slices.Contains(c.disable, item) }

// listFlag collects a repeatable flag whose values may also be comma lists, as K3s's string
// slices do: --disable=coredns,traefik --disable servicelb.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" && !slices.Contains(*l, item) {
			*l = append(*l, item)
		}
	}
	return nil
}

// flagError names the flag a bad value came from, so the one-line error says what to fix.
type flagError struct {
	flag string
	err  error
}

func (e *flagError) Error() string { return fmt.Sprintf("invalid --%s: %v", e.flag, e.err) }
func (e *flagError) Unwrap() error { return e.err }

// parseFlags parses args (without the program name). getenv and hostname are passed in so the
// node-name rules can be tested.
func parseFlags(args []string, getenv func(string) string, hostname func() (string, error), out io.Writer) (*config, error) {
	fs := flag.NewFlagSet("k3slike", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		cfg                                           config
		disable, clusterCIDR, serviceCIDR, clusterDNS listFlag
		nodeIP, nodeExternalIP                        listFlag
	)
	fs.StringVar(&cfg.dataDir, "data-dir", "/var/lib/rancher/k3s", "folder to hold state")
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig of an existing cluster; without it k3slike runs its own control plane")
	fs.Var(&disable, "disable", "do not deploy packaged components and delete any deployed ones (coredns, servicelb, traefik, local-storage, metrics-server, or any manifest name); repeatable, comma lists")
	fs.BoolVar(&cfg.disableNetworkPolicy, "disable-network-policy", false, "disable the network policy controller")
	fs.BoolVar(&cfg.disableCloudController, "disable-cloud-controller", false, "disable the cloud-controller stub's node handling")
	fs.BoolVar(&cfg.multiClusterCIDR, "multi-cluster-cidr", false, "honour ClusterCIDR objects when allocating pod CIDRs (experimental in K3s)")
	fs.Var(&clusterCIDR, "cluster-cidr", "IPv4/IPv6 network CIDRs to use for pod IPs (default 10.42.0.0/16)")
	fs.Var(&serviceCIDR, "service-cidr", "IPv4/IPv6 network CIDRs to use for service IPs (default 10.43.0.0/16)")
	fs.Var(&clusterDNS, "cluster-dns", "IPv4/IPv6 cluster IP for the coredns service (default: the tenth address of the service CIDR, 10.43.0.10)")
	fs.StringVar(&cfg.clusterDomain, "cluster-domain", "cluster.local", "cluster domain")
	fs.StringVar(&cfg.serviceLBNamespace, "servicelb-namespace", "kube-system", "namespace of the pods of the servicelb component")
	fs.StringVar(&cfg.nodeName, "node-name", "", "node name (default $K3S_NODE_NAME, else the hostname)")
	fs.Var(&nodeIP, "node-ip", "IPv4/IPv6 addresses to advertise for the node; repeatable, comma lists")
	fs.Var(&nodeExternalIP, "node-external-ip", "IPv4/IPv6 external addresses to advertise for the node; repeatable, comma lists")
	fs.StringVar(&cfg.systemDefaultRegistry, "system-default-registry", "", "private registry to prefix all system images with")
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
	cfg.disable = disable
	node.apply(&cfg)
	if cfg.kubeconfig != "" {
		// Someone else's cluster: its nodes have their own kubelets.
		cfg.disableAgent = true
	}

	var errs []error
	add := func(flag string, err error) {
		if err != nil {
			errs = append(errs, &flagError{flag: flag, err: err})
		}
	}
	var err error
	cfg.clusterCIDRs, err = parseCIDRs(clusterCIDR, "10.42.0.0/16")
	add("cluster-cidr", err)
	cfg.serviceCIDRs, err = parseCIDRs(serviceCIDR, "10.43.0.0/16")
	add("service-cidr", err)
	cfg.clusterDNS, err = ccmstub.ParseIPList(clusterDNS...)
	add("cluster-dns", err)
	if err == nil && len(cfg.clusterDNS) == 0 && len(cfg.serviceCIDRs) > 0 {
		cfg.clusterDNS = []netip.Addr{tenthAddress(cfg.serviceCIDRs[0])}
	}
	cfg.nodeIPs, err = ccmstub.ParseIPList(nodeIP...)
	add("node-ip", err)
	cfg.nodeExternalIPs, err = ccmstub.ParseIPList(nodeExternalIP...)
	add("node-external-ip", err)
	errs = append(errs, node.validate()...)
	if errs := validation.IsDNS1123Subdomain(cfg.clusterDomain); len(errs) > 0 {
		add("cluster-domain", errors.New(strings.Join(errs, "; ")))
	}
	if errs := validation.IsDNS1123Label(cfg.serviceLBNamespace); len(errs) > 0 {
		add("servicelb-namespace", errors.New(strings.Join(errs, "; ")))
	}
	if cfg.httpsListenPort < 1 || cfg.httpsListenPort > 65535 {
		add("https-listen-port", fmt.Errorf("%d is not a port", cfg.httpsListenPort))
	}
	if cfg.dataDir == "" {
		add("data-dir", errors.New("must not be empty"))
	} else if cfg.dataDir, err = filepath.Abs(cfg.dataDir); err != nil {
		add("data-dir", err)
	}
	cfg.nodeName, err = ccmstub.ResolveNodeName(cfg.nodeName, getenv, hostname)
	add("node-name", err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// parseCIDRs accepts one prefix per IP family, IPv4 first or IPv6 first, as K3s does for
// dual-stack clusters.
func parseCIDRs(values []string, def string) ([]netip.Prefix, error) {
	if len(values) == 0 {
		values = []string{def}
	}
	var out []netip.Prefix
	for _, v := range values {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, err
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("%s has host bits set (did you mean %s?)", v, p.Masked())
		}
		for _, seen := range out {
			if seen.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("%s: at most one CIDR per IP family", v)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// tenthAddress is K3s's default cluster DNS address: 10.43.0.10 for 10.43.0.0/16.
func tenthAddress(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	return a
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
	labels, taints, kubeletArgs, kubeProxyArgs listFlag
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
			errs = append(errs, &flagError{flag: "node-label", err: fmt.Errorf("%q is not key=value with a valid label key and value", l)})
		}
	}
	for _, t := range n.taints {
		if err := checkTaint(t); err != nil {
			errs = append(errs, &flagError{flag: "node-taint", err: err})
		}
	}
	for _, f := range []struct {
		flag string
		args []string
	}{{"kubelet-arg", n.kubeletArgs}, {"kube-proxy-arg", n.kubeProxyArgs}} {
		for _, a := range f.args {
			if name, _, _ := strings.Cut(a, "="); name == "" || strings.HasPrefix(name, "-") {
				errs = append(errs, &flagError{flag: f.flag, err: fmt.Errorf("%q: want name=value, without dashes", a)})
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
		nodeIP, nodeExternalIP listFlag
		node                   nodeFlags
		tokenFile              string
	)
	fs.StringVar(&cfg.serverURL, "server", getenv("K3S_URL"), "server to connect to, https://host:6443 ($K3S_URL)")
	fs.StringVar(&cfg.token, "token", getenv("K3S_TOKEN"), "token to join with, the server's <data-dir>/server/node-token ($K3S_TOKEN)")
	fs.StringVar(&tokenFile, "token-file", getenv("K3S_TOKEN_FILE"), "file holding the token ($K3S_TOKEN_FILE)")
	fs.StringVar(&cfg.dataDir, "data-dir", "/var/lib/rancher/k3s", "folder to hold state")
	fs.StringVar(&cfg.nodeName, "node-name", "", "node name (default $K3S_NODE_NAME, else the hostname)")
	fs.Var(&nodeIP, "node-ip", "IPv4/IPv6 addresses to advertise for the node; repeatable, comma lists")
	fs.Var(&nodeExternalIP, "node-external-ip", "IPv4/IPv6 external addresses to advertise for the node; repeatable, comma lists")
	fs.StringVar(&cfg.binDir, "bin-dir", "", "directory of kubelet and kube-proxy (default $K3SNET_BIN_DIR, else the build cache of hack/build-tools.sh)")
	node.register(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	node.apply(&cfg)
	var errs []error
	add := func(flag string, err error) {
		if err != nil {
			errs = append(errs, &flagError{flag: flag, err: err})
		}
	}
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
	var err error
	cfg.nodeIPs, err = ccmstub.ParseIPList(nodeIP...)
	add("node-ip", err)
	cfg.nodeExternalIPs, err = ccmstub.ParseIPList(nodeExternalIP...)
	add("node-external-ip", err)
	errs = append(errs, node.validate()...)
	if cfg.dataDir == "" {
		add("data-dir", errors.New("must not be empty"))
	} else if cfg.dataDir, err = filepath.Abs(cfg.dataDir); err != nil {
		add("data-dir", err)
	}
	cfg.nodeName, err = ccmstub.ResolveNodeName(cfg.nodeName, getenv, hostname)
	add("node-name", err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &cfg, nil
}
