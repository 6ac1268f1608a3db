package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/k3snet/k3snet/internal/k3sflags"
)

// defaultServiceNodePortRange is K3s's (and kube-apiserver's) --service-node-port-range.
const defaultServiceNodePortRange = "30000-32767"

// networkFlags are K3s's server flags of the embedded API server, the server's own node and
// the admin kubeconfig, with K3s's names, defaults and help.
type networkFlags struct {
	serviceNodePortRange      string
	nodeDNS                   nodeDNSFlags
	kubeControllerManagerArgs []string
	writeKubeconfig           string
	writeKubeconfigMode       string
	bindAddress               string
	advertiseAddress          string
	tlsSANs                   k3sflags.List
}

func (n *networkFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&n.serviceNodePortRange, "service-node-port-range", defaultServiceNodePortRange, "(networking) Port range to reserve for services with NodePort visibility")
	n.nodeDNS.register(fs)
	// Not split on commas: a value such as feature-gates=A=true,B=false holds them.
	fs.StringArrayVar(&n.kubeControllerManagerArgs, "kube-controller-manager-arg", nil, "(flags) Customized flag for kube-controller-manager process (name=value); node-cidr-mask-size[-ipv4|-ipv6] sets the size of each node's pod CIDR")
	home, _ := os.UserHomeDir()
	fs.StringVarP(&n.writeKubeconfig, "write-kubeconfig", "o", defaultKubeconfigOutput(os.Geteuid(), home), "(client) Write kubeconfig for admin client to this file")
	fs.StringVar(&n.writeKubeconfigMode, "write-kubeconfig-mode", "", "(client) Write kubeconfig with this mode (octal, such as 644; default 600)")
	fs.StringVar(&n.bindAddress, "bind-address", "", "(listener) k3s bind address (default: 0.0.0.0; 127.0.0.1 with --disable-agent and no --advertise-address)")
	fs.StringVar(&n.advertiseAddress, "advertise-address", "", "(listener) IPv4/IPv6 address that apiserver uses to advertise to members of the cluster (default: node-external-ip/node-ip)")
	fs.Var(listValue{&n.tlsSANs}, "tls-san", "(listener) Add additional hostnames or IPv4/IPv6 addresses as Subject Alternative Names on the server TLS cert")
}

// apply validates the flags into cfg, each error naming its flag. The node CIDR mask sizes
// are checked against cfg.clusterCIDRs when they are already set (again at start otherwise).
func (n *networkFlags) apply(cfg *config, errs *k3sflags.Errors) {
	if pr, err := utilnet.ParsePortRange(n.serviceNodePortRange); err != nil {
		errs.Add("service-node-port-range", fmt.Errorf("%q: want first-last, such as %s", n.serviceNodePortRange, defaultServiceNodePortRange))
	} else {
		cfg.serviceNodePortRange = pr.String()
	}
	n.nodeDNS.apply(cfg, errs)
	cfg.kubeControllerManagerArgs = n.kubeControllerManagerArgs
	_, err := parseControllerManagerArgs(cfg.kubeControllerManagerArgs, cfg.clusterCIDRs)
	errs.Add("kube-controller-manager-arg", err)
	cfg.writeKubeconfig = n.writeKubeconfig
	cfg.writeKubeconfigMode = n.writeKubeconfigMode
	_, err = parseKubeconfigMode(n.writeKubeconfigMode)
	errs.Add("write-kubeconfig-mode", err)
	cfg.bindAddress, err = parseOptionalAddr(n.bindAddress)
	errs.Add("bind-address", err)
	cfg.advertiseAddress, err = parseOptionalAddr(n.advertiseAddress)
	if err == nil && cfg.advertiseAddress.IsUnspecified() {
		err = fmt.Errorf("%s is not an address others can reach", cfg.advertiseAddress)
	}
	errs.Add("advertise-address", err)
	cfg.tlsSANs = n.tlsSANs
	_, _, err = splitSANs(n.tlsSANs)
	errs.Add("tls-san", err)
}

// nodeDNSFlags are --node-internal-dns and --node-external-dns, flags of K3s's server and
// agent alike: the DNS names the cloud-controller stub publishes as the node's InternalDNS and
// ExternalDNS addresses.
type nodeDNSFlags struct {
	internal, external k3sflags.List
}

func (n *nodeDNSFlags) register(fs *pflag.FlagSet) {
	fs.Var(listValue{&n.internal}, "node-internal-dns", "(agent/networking) internal DNS addresses to advertise for node")
	fs.Var(listValue{&n.external}, "node-external-dns", "(agent/networking) external DNS addresses to advertise for node")
}

func (n *nodeDNSFlags) apply(cfg *config, errs *k3sflags.Errors) {
	cfg.nodeInternalDNS, cfg.nodeExternalDNS = n.internal, n.external
	for _, f := range []struct {
		flag  string
		names []string
	}{{"node-internal-dns", n.internal}, {"node-external-dns", n.external}} {
		for _, name := range f.names {
			errs.Add(f.flag, checkDNSName(name))
		}
	}
}

// listValue is a k3sflags.List as a pflag value: repeatable, each value a comma list.
type listValue struct{ l *k3sflags.List }

func (v listValue) String() string     { return v.l.String() }
func (v listValue) Set(s string) error { return v.l.Set(s) }
func (v listValue) Type() string       { return "strings" }

// defaultKubeconfigOutput is K3s's --write-kubeconfig default: /etc/rancher/k3s/k3s.yaml for
// root, ~/.kube/k3s.yaml for anyone else.
func defaultKubeconfigOutput(euid int, home string) string {
	if euid == 0 || home == "" {
		return "/etc/rancher/k3s/k3s.yaml"
	}
	return filepath.Join(home, ".kube", "k3s.yaml")
}

// parseKubeconfigMode parses --write-kubeconfig-mode, octal permission bits as chmod takes
// them; empty is K3s's default, 0600.
func parseKubeconfigMode(s string) (os.FileMode, error) {
	if s == "" {
		return 0o600, nil
	}
	mode, err := strconv.ParseUint(s, 8, 32)
	if err != nil || mode > 0o777 {
		return 0, fmt.Errorf("%q is not an octal file mode such as 600 or 0644", s)
	}
	return os.FileMode(mode), nil
}

// parseOptionalAddr parses an IP address; empty is the invalid (unset) address.
func parseOptionalAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

// splitSANs sorts --tls-san values into IP addresses and DNS names (a leading "*." label
// allowed, as certificates allow wildcards).
func splitSANs(sans []string) (ips []netip.Addr, dns []string, err error) {
	var bad []string
	for _, s := range sans {
		if ip, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, ip.Unmap())
			continue
		}
		if checkDNSName(strings.TrimPrefix(s, "*.")) != nil {
			bad = append(bad, fmt.Sprintf("%q", s))
			continue
		}
		dns = append(dns, strings.ToLower(s))
	}
	if len(bad) > 0 {
		return nil, nil, fmt.Errorf("%s: want a DNS name or an IP address", strings.Join(bad, ", "))
	}
	return ips, dns, nil
}

// checkDNSName accepts a DNS name as Kubernetes names are checked, case-insensitively.
func checkDNSName(s string) error {
	if problems := validation.IsDNS1123Subdomain(strings.ToLower(s)); len(problems) > 0 {
		return fmt.Errorf("%q is not a DNS name: %s", s, strings.Join(problems, "; "))
	}
	return nil
}
