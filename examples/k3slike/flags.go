package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	logsapi "k8s.io/component-base/logs/api/v1"

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
	helmJobImage          string
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

	// logging is the klog configuration of -v, --vmodule, --logging-format and --debug, which
	// run applies before anything logs; warnings are the ignored settings it then logs.
	logging  *logsapi.LoggingConfiguration
	warnings []string
}

// disabled reports whether item was named in --disable.
func (c *config) disabled(item string) bool { return slices.Contains(c.disable, item) }

// system is what parsing reads from the machine, passed in so tests choose it.
type system struct {
	getenv   func(string) string
	hostname func() (string, error)
	uid      int
	home     string // the user's home directory, for the non-root data dir
	files    fs.FS  // the root file system, for the config files
}

func hostSystem() system {
	home, _ := os.UserHomeDir()
	return system{getenv: os.Getenv, hostname: osHostname, uid: os.Geteuid(), home: home, files: os.DirFS("/")}
}

// commandLine is the flag set of `k3slike server` or `k3slike agent` with what K3s adds
// around its flags: --help, the config file, the environment and the logging flags.
type commandLine struct {
	command    string
	fs         *pflag.FlagSet
	help       bool
	configFile string
	logging    loggingFlags
}

// newCommandLine starts command's flag set with the flags every command has.
func newCommandLine(command string) *commandLine {
	c := &commandLine{command: command, fs: pflag.NewFlagSet("k3slike "+command, pflag.ContinueOnError)}
	c.fs.SetOutput(io.Discard) // errors are returned, help is written by parse
	c.fs.Usage = func() {}
	c.fs.SortFlags = false
	c.fs.BoolVarP(&c.help, "help", "h", false, "show this help")
	c.fs.StringVarP(&c.configFile, "config", "c", defaultConfigFile, "load configuration from FILE, then from FILE.d/*.yaml")
	c.logging.register(c.fs)
	return c
}

// addGoFlags adds flags registered on a standard flag set (internal/k3sflags, which
// cmd/k3snet shares), with K3s's one-letter forms.
func (c *commandLine) addGoFlags(gofs *flag.FlagSet) {
	short := map[string]string{}
	for s, long := range k3sShortFlags {
		short[long] = s
	}
	gofs.VisitAll(func(f *flag.Flag) {
		pf := pflag.PFlagFromGoFlag(f)
		pf.Shorthand = short[f.Name]
		c.fs.AddFlag(pf)
	})
}

// parse parses args, then fills what they leave unset from the environment and the config
// files; it writes --help to out and returns pflag.ErrHelp then. Warnings are settings it
// ignored, for the log.
func (c *commandLine) parse(args []string, sys system, out io.Writer) (warnings []string, err error) {
	envHelp(c.fs)
	missing := unimplemented(c.command, c.fs)
	if err := rejectUnimplemented(args, missing); err != nil {
		return nil, err
	}
	if err := c.fs.Parse(args); err != nil {
		var notExist *pflag.NotExistError
		if errors.As(err, &notExist) {
			// The words of Go's flag package, which K3s's command line uses.
			name := "--" + notExist.GetSpecifiedName()
			if notExist.GetSpecifiedShortnames() != "" {
				name = "-" + notExist.GetSpecifiedShortnames()
			}
			return nil, fmt.Errorf("flag provided but not defined: %s", name)
		}
		return nil, err
	}
	if c.help {
		writeHelp(out, c.command, c.fs)
		return nil, pflag.ErrHelp
	}
	if c.fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.fs.Arg(0))
	}
	configFile, explicit := c.configFile, c.fs.Changed("config")
	if env := sys.getenv("K3S_CONFIG_FILE"); env != "" && !explicit {
		configFile, explicit = env, true
	}
	docs, err := configFiles(sys.files, configFile, explicit)
	if err != nil {
		return nil, err
	}
	values, err := mergeConfig(docs)
	if err != nil {
		return nil, err
	}
	return applySettings(c.fs, settingSources{config: values, getenv: sys.getenv, unimplemented: missing})
}

// parseFlags parses `k3slike server`'s args (without the program name and command): K3s's
// server flags that k3snet uses, with K3s's names, defaults, environment variables and
// config files. --help is written to out.
func parseFlags(args []string, sys system, out io.Writer) (*config, error) {
	cl := newCommandLine("server")
	fs := cl.fs
	var (
		cfg                    config
		cluster                k3sflags.Cluster
		nodeIP, nodeExternalIP k3sflags.List
		network                networkFlags
		node                   nodeFlags
	)
	fs.StringVarP(&cfg.dataDir, "data-dir", "d", defaultDataDir(sys.uid, sys.home), "folder to hold state")
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig of an existing cluster; without it k3slike runs its own control plane")
	gofs := flag.NewFlagSet("", flag.ContinueOnError)
	cluster.Register(gofs)
	k3sflags.RegisterNodeIPs(gofs, &nodeIP, &nodeExternalIP)
	cl.addGoFlags(gofs)
	fs.BoolVar(&cfg.disableNetworkPolicy, "disable-network-policy", false, "disable the network policy controller")
	fs.StringVar(&cfg.nodeName, "node-name", "", "node name (default: the hostname)")
	fs.IntVar(&cfg.httpsListenPort, "https-listen-port", 6443, "HTTPS port of the embedded kube-apiserver")
	fs.StringVar(&cfg.metricsBindAddress, "metrics-bind-address", "127.0.0.1:10258", "address of /healthz, /readyz and /metrics")
	fs.StringVar(&cfg.binDir, "bin-dir", "", "directory of the control-plane binaries, kubelet and kube-proxy (default $K3SNET_BIN_DIR, else the build cache of hack/build-tools.sh)")
	fs.BoolVar(&cfg.disableAgent, "disable-agent", false, "do not run a kubelet, containerd and kube-proxy on this node; kwok simulates the server's node instead")
	node.register(fs, &cfg)
	network.register(fs)
	warnings, err := cl.parse(args, sys, out)
	if err != nil {
		return nil, err
	}
	cfg.warnings, cfg.logging = warnings, cl.logging.settings()
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
	cfg.helmJobImage = s.HelmJobImage
	cfg.nodeIPs, cfg.nodeExternalIPs = k3sflags.NodeIPs(&errs, nodeIP, nodeExternalIP)
	errs = append(errs, node.validate()...)
	network.apply(&cfg, &errs)
	if cfg.httpsListenPort < 1 || cfg.httpsListenPort > 65535 {
		errs.Add("https-listen-port", fmt.Errorf("%d is not a port", cfg.httpsListenPort))
	}
	cfg.dataDir = k3sflags.DataDir(&errs, cfg.dataDir)
	cfg.nodeName, err = ccmstub.ResolveNodeName(cfg.nodeName, sys.getenv, sys.hostname)
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

func (n *nodeFlags) register(fs *pflag.FlagSet, cfg *config) {
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
func parseAgentFlags(args []string, sys system, out io.Writer) (*config, error) {
	cl := newCommandLine("agent")
	fs := cl.fs
	var (
		cfg                    config
		nodeIP, nodeExternalIP k3sflags.List
		node                   nodeFlags
		dns                    nodeDNSFlags
		tokenFile              string
	)
	fs.StringVarP(&cfg.serverURL, "server", "s", "", "server to connect to, https://host:6443")
	fs.StringVarP(&cfg.token, "token", "t", "", "token to join with, the server's <data-dir>/server/node-token")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the token")
	fs.StringVarP(&cfg.dataDir, "data-dir", "d", defaultDataDir(sys.uid, sys.home), "folder to hold state")
	fs.StringVar(&cfg.nodeName, "node-name", "", "node name (default: the hostname)")
	gofs := flag.NewFlagSet("", flag.ContinueOnError)
	k3sflags.RegisterNodeIPs(gofs, &nodeIP, &nodeExternalIP)
	cl.addGoFlags(gofs)
	dns.register(fs)
	fs.StringVar(&cfg.binDir, "bin-dir", "", "directory of kubelet and kube-proxy (default $K3SNET_BIN_DIR, else the build cache of hack/build-tools.sh)")
	node.register(fs, &cfg)
	warnings, err := cl.parse(args, sys, out)
	if err != nil {
		return nil, err
	}
	cfg.warnings, cfg.logging = warnings, cl.logging.settings()
	node.apply(&cfg)
	var errs k3sflags.Errors
	add := errs.Add
	if cfg.token == "" && tokenFile != "" {
		data, err := readFile(sys.files, tokenFile)
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
	dns.apply(&cfg, &errs)
	errs = append(errs, node.validate()...)
	cfg.dataDir = k3sflags.DataDir(&errs, cfg.dataDir)
	cfg.nodeName, err = ccmstub.ResolveNodeName(cfg.nodeName, sys.getenv, sys.hostname)
	add("node-name", err)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}
