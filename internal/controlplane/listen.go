package controlplane

import (
	"net/netip"
	"slices"
)

// listenAddresses are where kube-apiserver listens, what it publishes as the kubernetes
// Service's endpoint, and where this machine's clients reach it.
type listenAddresses struct {
	bind netip.Addr
	// advertise is invalid when nothing is published: the API server is this machine's only.
	advertise netip.Addr
	client    netip.Addr
}

// apiServerListen decides the addresses of cfg: with an advertise address the API server
// listens on every address by default, as K3s's does (--bind-address 0.0.0.0); without one it
// listens on loopback only unless told otherwise. Clients use the bind address when it is a
// specific one, else the advertise address, else loopback.
func apiServerListen(cfg Config) listenAddresses {
	l := listenAddresses{bind: cfg.BindAddress, advertise: cfg.AdvertiseAddress, client: netip.MustParseAddr("127.0.0.1")}
	if !l.bind.IsValid() {
		l.bind = netip.MustParseAddr("127.0.0.1")
		if l.advertise.IsValid() {
			l.bind = netip.IPv4Unspecified()
		}
	}
	switch {
	case !l.bind.IsUnspecified():
		l.client = l.bind
	case l.advertise.IsValid():
		l.client = l.advertise
	}
	return l
}

// args are kube-apiserver's arguments for l and the NodePort range (empty: its default).
func (l listenAddresses) args(nodePortRange string) []string {
	args := []string{"--bind-address=" + l.bind.String()}
	if l.advertise.IsValid() {
		args = append(args, "--advertise-address="+l.advertise.String())
	} else {
		args = append(args,
			"--advertise-address=127.0.0.1",
			// The kubernetes Service's endpoints would be 127.0.0.1, which Endpoints validation
			// rejects; nothing in this cluster reaches the API server through its ClusterIP.
			"--endpoint-reconciler-type=none",
		)
	}
	if nodePortRange != "" {
		args = append(args, "--service-node-port-range="+nodePortRange)
	}
	return args
}

// servingIPs are the addresses, beyond loopback and the kubernetes Service's, the serving
// certificate must carry: the advertised and bound ones, then extra, each once.
func (l listenAddresses) servingIPs(extra []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, ip := range append([]netip.Addr{l.advertise, l.bind}, extra...) {
		if ip.IsValid() && !ip.IsUnspecified() && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}
