package agent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// nodeSysctls are the kernel settings a node needs, as K3s sets them at agent start: packets
// forwarded between pods and nodes, and bridged pod traffic seen by iptables (kube-proxy's
// rules for a Service whose backend is on the same bridge, NetworkPolicy between local pods).
func nodeSysctls(clusterCIDRs []netip.Prefix) map[string]string {
	s := map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
	}
	for _, p := range clusterCIDRs {
		if p.Addr().Is6() {
			s["net/ipv6/conf/all/forwarding"] = "1"
		}
	}
	return s
}

// setSysctls writes each setting below procSys, naming the ones that failed.
func setSysctls(procSys string, settings map[string]string) error {
	var failed []string
	for key, value := range settings {
		if err := os.WriteFile(filepath.Join(procSys, key), []byte(value), 0o644); err != nil {
			failed = append(failed, fmt.Sprintf("%s=%s: %v", strings.ReplaceAll(key, "/", "."), value, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("setting sysctls: %s", strings.Join(failed, "; "))
	}
	return nil
}
