package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// Config is what an agent needs to run its node. The server's own agent and a joined agent
// differ only in their credentials: the server writes the kubelet's kubeconfig itself, an
// agent gives the kubelet a bootstrap kubeconfig and lets it get its certificate through a CSR.
type Config struct {
	// NodeName is the node's name (the kubelet's --hostname-override).
	NodeName string
	// NodeIPs are the node's internal addresses, primary first (the kubelet's --node-ip).
	NodeIPs []netip.Addr
	// DataDir is K3s's --data-dir; see NewLayout.
	DataDir string
	// BinDir holds kubelet and kube-proxy (hack/build-tools.sh's directory).
	BinDir string
	// NodeBinDir holds bin/ (containerd, containerd-shim-runc-v2, ctr, runc) and cni/ (the CNI
	// plugins): hack/build-node.sh's directory.
	NodeBinDir string
	// ClusterCIDRs and ServiceCIDRs are the server's --cluster-cidr and --service-cidr.
	ClusterCIDRs, ServiceCIDRs []netip.Prefix
	// ClusterDNS and ClusterDomain go to the kubelet for the pods' resolv.conf.
	ClusterDNS    []netip.Addr
	ClusterDomain string
	// SandboxImage is the pause image containerd runs every pod sandbox from.
	SandboxImage string
	// AllowForwardingSysctls lets pods set the forwarding sysctls ServiceLB's pods set, as
	// K3s's kubelet allows them when ServiceLB is on.
	AllowForwardingSysctls bool
	// ExternalCloudProvider runs the kubelet with --cloud-provider=external, so the Node starts
	// with the uninitialized taint and the cloud-controller stub sets its addresses.
	ExternalCloudProvider bool
	// NodeLabels and NodeTaints are K3s's --node-label and --node-taint (key=value, key=value:Effect),
	// registered by the kubelet.
	NodeLabels, NodeTaints []string
	// KubeletArgs and KubeProxyArgs are K3s's --kubelet-arg and --kube-proxy-arg (name=value,
	// without dashes), added after ours so they win.
	KubeletArgs, KubeProxyArgs []string
	// CACertFile is the cluster CA: the kubelet trusts client certificates it signed.
	CACertFile string
	// KubeletKubeconfig is the kubelet's --kubeconfig: written by the server for its own node,
	// or by the kubelet itself after its TLS bootstrap.
	KubeletKubeconfig string
	// KubeletBootstrapKubeconfig, when set, is the kubelet's --bootstrap-kubeconfig.
	KubeletBootstrapKubeconfig string
	// KubeProxyKubeconfig is kube-proxy's client identity (system:kube-proxy).
	KubeProxyKubeconfig string
}

// Validate reports every missing or inconsistent setting at once.
func (c *Config) Validate() error {
	var errs []error
	need := func(name, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("agent: %s is required", name))
		}
	}
	need("NodeName", c.NodeName)
	need("BinDir", c.BinDir)
	need("NodeBinDir", c.NodeBinDir)
	need("SandboxImage", c.SandboxImage)
	need("CACertFile", c.CACertFile)
	need("KubeletKubeconfig", c.KubeletKubeconfig)
	need("KubeProxyKubeconfig", c.KubeProxyKubeconfig)
	if !filepath.IsAbs(c.DataDir) {
		errs = append(errs, fmt.Errorf("agent: DataDir %q must be an absolute path", c.DataDir))
	}
	if len(c.NodeIPs) == 0 {
		errs = append(errs, errors.New("agent: NodeIPs is required"))
	}
	if len(c.ClusterCIDRs) == 0 || len(c.ServiceCIDRs) == 0 {
		errs = append(errs, errors.New("agent: ClusterCIDRs and ServiceCIDRs are required"))
	}
	for _, arg := range append(append([]string{}, c.KubeletArgs...), c.KubeProxyArgs...) {
		if name, _, _ := strings.Cut(arg, "="); name == "" || strings.HasPrefix(name, "-") {
			errs = append(errs, fmt.Errorf("agent: extra argument %q: want name=value, without dashes", arg))
		}
	}
	return errors.Join(errs...)
}

// extraArgs turns K3s's --kubelet-arg / --kube-proxy-arg values into flags.
func extraArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		out = append(out, "--"+a)
	}
	return out
}

// argValue returns the value of name among K3s-style name=value extra arguments; the last one
// wins, as it does on the command line.
func argValue(args []string, name string) (string, bool) {
	value, found := "", false
	for _, a := range args {
		if n, v, ok := strings.Cut(a, "="); ok && n == name {
			value, found = v, true
		}
	}
	return value, found
}

func joinAddrs(addrs []netip.Addr) string { return joinPrefixes(addrs) }
