package netpolworkload

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWorkloadOfRecordHasTheScriptsShape(t *testing.T) {
	w := OfRecord(1)
	pods := w.PodObjects()
	assert.Len(t, w.NodeObjects(), 50)
	assert.Len(t, w.NamespaceObjects(), 100)
	assert.Len(t, pods, 5000)
	assert.Len(t, w.PolicyObjects(), 1000)
	local, ips := 0, map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName == "node-0" {
			local++
		}
		ips[p.Status.PodIP] = true
	}
	assert.Equal(t, 100, local, "the first 100 pods run on node-0")
	assert.Len(t, ips, 5000, "every pod has an address of its own")
	assert.True(t, w.PodCIDR(0).Contains(mustAddr(t, pods[0].Status.PodIP)), "node-0's pods are in its pod CIDR")
}

func TestLocalNodeNamesNodeZero(t *testing.T) {
	w := Workload{Nodes: 3, Namespaces: 1, Pods: 4, Local: 2, Policies: 0, LocalNode: "server"}
	assert.Equal(t, "server", w.NodeObjects()[0].Name)
	assert.Equal(t, "node-1", w.NodeObjects()[1].Name)
	assert.Equal(t, "server", w.PodObjects()[1].Spec.NodeName)
	assert.NotEqual(t, "server", w.PodObjects()[2].Spec.NodeName)
}

func TestScaledWorkloadAddressesStayUnique(t *testing.T) {
	w := OfRecord(10)
	ips := map[string]bool{}
	for _, p := range w.PodObjects() {
		ips[p.Status.PodIP] = true
	}
	assert.Len(t, ips, 50000)
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
