package nodecluster

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/netns"
)

// PodNamespace returns the network namespace of the pod whose address is ip, on whichever
// node runs it, so a test can send real packets from a real pod (or listen in it) without
// going through kubectl exec. containerd mounts each pod's namespace below its node's state
// directory, so the search looks at this cluster's pods only.
func (c *Cluster) PodNamespace(t testing.TB, ip netip.Addr) *netns.Namespace {
	t.Helper()
	for _, n := range c.Nodes() {
		for _, path := range n.PodNetnsPaths(t) {
			ns, err := netns.Open(path, "pod-"+filepath.Base(path))
			if err != nil {
				continue
			}
			found := false
			_ = ns.Do(func() error {
				found = hasAddress(ip)
				return nil
			})
			if found {
				return ns
			}
		}
	}
	t.Fatalf("nodecluster: no pod of this cluster has address %s", ip)
	return nil
}

// PodNetnsPaths lists the network namespaces of the pods on this node, as the bind mounts
// containerd makes for them below the node's state directory.
func (n *Node) PodNetnsPaths(t testing.TB) []string {
	t.Helper()
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	return nsfsMounts(string(mountinfo), agent.NewLayout(n.DataDir).ContainerdState)
}

// nsfsMounts lists the network namespace bind mounts (nsfs) below dir in a mountinfo table.
func nsfsMounts(mountinfo, dir string) []string {
	var out []string
	for line := range strings.Lines(mountinfo) {
		pre, post, ok := strings.Cut(line, " - ")
		fields, fs := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) >= 5 && len(fs) > 0 && fs[0] == "nsfs" && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

// hasAddress reports whether an interface of the calling thread's namespace has ip.
func hasAddress(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == ip {
			return true
		}
	}
	return false
}

// PodIPs returns a pod's addresses, primary family first.
func (c *Cluster) PodIPs(t testing.TB, namespace, name string) []netip.Addr {
	t.Helper()
	out := c.Kubectl(t, "get", "pod", "-n", namespace, name, "-o", "jsonpath={.status.podIPs[*].ip}")
	var ips []netip.Addr
	for _, f := range strings.Fields(out) {
		if ip, err := netip.ParseAddr(f); err == nil {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		t.Fatalf("nodecluster: pod %s/%s has no address yet", namespace, name)
	}
	return ips
}
