package benchworkload

import (
	"net/netip"
	"testing"
)

// TestPodsLiveInTheirNodesPodCIDR checks the addressing the benchmarks and the side-by-side
// run rely on: every pod's address is inside its node's pod CIDR, unique, and node-0 holds
// exactly the local pods, at the workload of record and scaled up.
func TestPodsLiveInTheirNodesPodCIDR(t *testing.T) {
	for _, tt := range []struct {
		name string
		size Size
	}{
		{name: "the workload of record", size: Record()},
		{name: "ten times the workload of record", size: Record().Scaled(10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cidrs := map[string]netip.Prefix{}
			for n, node := range tt.size.NodeObjects() {
				cidrs[node.Name] = netip.MustParsePrefix(node.Spec.PodCIDR)
				if got := node.Status.Addresses[0].Address; got != NodeIP(n).String() {
					t.Fatalf("node %s has address %s, want %s", node.Name, got, NodeIP(n))
				}
			}
			seen, local := map[string]bool{}, 0
			for _, pod := range Generate(tt.size).Pods {
				ip := netip.MustParseAddr(pod.Status.PodIP)
				if !cidrs[pod.Spec.NodeName].Contains(ip) {
					t.Fatalf("pod %s/%s has %s outside %s's pod CIDR %s", pod.Namespace, pod.Name, ip, pod.Spec.NodeName, cidrs[pod.Spec.NodeName])
				}
				if seen[ip.String()] {
					t.Fatalf("pod %s/%s reuses %s", pod.Namespace, pod.Name, ip)
				}
				seen[ip.String()] = true
				if pod.Spec.NodeName == NodeName(0) {
					local++
				}
			}
			if local != tt.size.Local {
				t.Fatalf("%d pods on node-0, want %d", local, tt.size.Local)
			}
		})
	}
}
