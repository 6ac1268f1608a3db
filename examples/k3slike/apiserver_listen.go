package main

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// apiServerAddresses are kube-apiserver's bind and advertise addresses as K3s picks them from
// --bind-address and --advertise-address: the advertise address defaults to the first
// --node-external-ip, else the node IP. A server without a real node keeps its API server on
// loopback, publishing nothing, unless the user names an address: a specific bind address is
// then also the advertised one, as kube-apiserver defaults it, and an unspecified one
// advertises the node's. Invalid results mean the control plane's defaults.
func apiServerAddresses(cfg *config) (bind, advertise netip.Addr) {
	bind, advertise = cfg.bindAddress, cfg.advertiseAddress
	switch {
	case advertise.IsValid():
	case !cfg.disableAgent || (bind.IsValid() && bind.IsUnspecified()):
		if len(cfg.nodeExternalIPs) > 0 {
			advertise = cfg.nodeExternalIPs[0]
		} else {
			advertise = nodeInternalIPs(cfg)[0]
		}
	case bind.IsValid() && !bind.IsLoopback():
		advertise = bind
	}
	return bind, advertise
}

// servingSANs are the names and addresses beyond the API server's own that its serving
// certificate carries: the node's name and addresses, then --tls-san's, each once. With no
// real node and no --node-ip, the host's address is not one of them: nothing reaches it there.
func servingSANs(cfg *config) (ips []netip.Addr, dns []string) {
	sanIPs, sanDNS, _ := splitSANs(cfg.tlsSANs) // validated with the flags
	dns = []string{cfg.nodeName}
	var nodeIPs []netip.Addr
	if !cfg.disableAgent || len(cfg.nodeIPs) > 0 {
		nodeIPs = nodeInternalIPs(cfg)
	}
	for _, ip := range slices.Concat(nodeIPs, cfg.nodeExternalIPs, sanIPs) {
		if !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	for _, name := range sanDNS {
		if !slices.Contains(dns, name) {
			dns = append(dns, name)
		}
	}
	return ips, dns
}

// kubeconfigServerURL is the server URL of the kubeconfig --write-kubeconfig writes:
// loopback, as K3s writes https://127.0.0.1:6443, unless the API server is bound to one
// specific address.
func kubeconfigServerURL(bind netip.Addr, port int) string {
	host := "127.0.0.1"
	if bind.IsValid() && !bind.IsUnspecified() {
		host = bind.String()
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port))
}
