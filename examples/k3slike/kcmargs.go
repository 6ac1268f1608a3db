package main

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// controllerManagerArgs is --kube-controller-manager-arg sorted out: the node CIDR mask sizes,
// which k3snet's pod CIDR allocator (clustercidr) applies in place of the controller manager's
// range allocator, and the rest, passed to the embedded kube-controller-manager.
type controllerManagerArgs struct {
	// nodeMaskIPv4 and nodeMaskIPv6 are the per-node prefix lengths; 0 means the default
	// (/24, /64).
	nodeMaskIPv4, nodeMaskIPv6 int
	// extra are the other arguments as "--name=value", in the order given.
	extra []string
}

// ownedControllerManagerArg says why k3slike refuses a controller manager flag it sets itself:
// changing it would cut the controller manager off from the control plane or fight clustercidr
// over the pod CIDRs.
func ownedControllerManagerArg(name string) (why string, owned bool) {
	switch name {
	case "kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig":
		return "k3slike gives the controller manager its own identity", true
	case "secure-port":
		return "k3slike checks the controller manager's health on the port it picks", true
	case "allocate-node-cidrs":
		return "k3snet's clustercidr allocates the nodes' pod CIDRs (--disable-node-ipam leaves them to someone else)", true
	case "cluster-cidr":
		return "set it with --cluster-cidr", true
	case "service-cluster-ip-range":
		return "set it with --service-cidr", true
	case "service-account-private-key-file", "root-ca-file", "cluster-signing-cert-file", "cluster-signing-key-file":
		return "k3slike's PKI owns the cluster CA and the service-account key", true
	}
	return "", false
}

// parseControllerManagerArgs sorts K3s's --kube-controller-manager-arg values (name=value,
// without dashes) for a cluster with clusterCIDRs (empty means K3s's single-stack IPv4
// default). The mask sizes follow kube-controller-manager's rules: node-cidr-mask-size is for
// a single-stack cluster and excludes the per-family flags, and a per-family flag must match
// a family of the cluster.
func parseControllerManagerArgs(args []string, clusterCIDRs []netip.Prefix) (controllerManagerArgs, error) {
	var out controllerManagerArgs
	var errs []error
	mask := map[string]int{}
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		name = strings.TrimLeft(name, "-")
		if name == "" {
			errs = append(errs, fmt.Errorf("%q: want name=value", a))
			continue
		}
		switch name {
		case "node-cidr-mask-size", "node-cidr-mask-size-ipv4", "node-cidr-mask-size-ipv6":
			limit := 128
			if name == "node-cidr-mask-size-ipv4" {
				limit = 32
			}
			n, err := strconv.Atoi(value)
			if !ok || err != nil || n < 1 || n > limit {
				errs = append(errs, fmt.Errorf("%q: %s takes a prefix length, 1-%d", a, name, limit))
				continue
			}
			mask[name] = n
			continue
		}
		if why, owned := ownedControllerManagerArg(name); owned {
			errs = append(errs, fmt.Errorf("%q: k3slike sets %s itself: %s", a, name, why))
			continue
		}
		if !ok {
			// A boolean flag given bare, as kube-controller-manager accepts it.
			out.extra = append(out.extra, "--"+name)
			continue
		}
		out.extra = append(out.extra, "--"+name+"="+value)
	}
	if err := errors.Join(errs...); err != nil {
		return controllerManagerArgs{}, err
	}
	var err error
	out.nodeMaskIPv4, out.nodeMaskIPv6, err = nodeMaskSizes(mask, clusterCIDRs)
	if err != nil {
		return controllerManagerArgs{}, err
	}
	return out, nil
}

// nodeMaskSizes applies kube-controller-manager's rules for its three mask flags (given in
// mask by name) to a cluster with clusterCIDRs.
func nodeMaskSizes(mask map[string]int, clusterCIDRs []netip.Prefix) (ipv4, ipv6 int, err error) {
	has4 := slices.ContainsFunc(clusterCIDRs, func(p netip.Prefix) bool { return p.Addr().Is4() })
	has6 := slices.ContainsFunc(clusterCIDRs, func(p netip.Prefix) bool { return p.Addr().Is6() })
	if !has4 && !has6 {
		has4 = true // K3s's default --cluster-cidr, 10.42.0.0/16
	}
	single, v4, v6 := mask["node-cidr-mask-size"], mask["node-cidr-mask-size-ipv4"], mask["node-cidr-mask-size-ipv6"]
	switch {
	case single != 0 && has4 && has6:
		return 0, 0, errors.New("node-cidr-mask-size is not allowed with a dual-stack --cluster-cidr: use node-cidr-mask-size-ipv4 and node-cidr-mask-size-ipv6")
	case single != 0 && (v4 != 0 || v6 != 0):
		return 0, 0, errors.New("node-cidr-mask-size-ipv4 and node-cidr-mask-size-ipv6 are not allowed with node-cidr-mask-size")
	case single != 0 && has4:
		if single > 32 {
			return 0, 0, fmt.Errorf("node-cidr-mask-size=%d is longer than an IPv4 address", single)
		}
		return single, 0, nil
	case single != 0:
		return 0, single, nil
	case v4 != 0 && !has4:
		return 0, 0, errors.New("node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 --cluster-cidr")
	case v6 != 0 && !has6:
		return 0, 0, errors.New("node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 --cluster-cidr")
	}
	return v4, v6, nil
}
