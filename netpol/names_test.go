package netpol

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestOwnNames(t *testing.T) {
	tests := []struct {
		name  string
		chain string
		set   string
		want  bool
	}{
		{name: "our top-level and shared chains are ours", chain: ChainForward, want: true},
		{name: "a pod group chain is ours", chain: podGroupChainName(corev1.IPv4Protocol, dirIngress, nil), want: true},
		{name: "a policy chain is ours", chain: policyChainName(corev1.IPv6Protocol, "x", "p", dirEgress), want: true},
		{name: "the tail chain is ours", chain: ChainTail, want: true},
		{name: "kube-router's service proxy chain is not ours", chain: "KUBE-ROUTER-SERVICES"},
		{name: "kube-proxy's chains are not ours", chain: "KUBE-FORWARD"},
		{name: "a policy-chain prefix without a hash is not ours", chain: "KUBE-NWPLCY-MINE"},
		{name: "an ipBlock set is ours", set: setName(srcSetPrefix, corev1.IPv6Protocol, setTypeNet, []string{"::/1"}), want: true},
		{name: "a temporary set is ours", set: tempSetName(setName(dstSetPrefix, corev1.IPv4Protocol, setTypeIP, nil)), want: true},
		{name: "kube-router's local pods set is ours", set: kubeRouterLocalPods, want: true},
		{name: "kube-router's service proxy set is not ours", set: "kube-router-svip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.chain != "" {
				assert.Equal(t, tt.want, isOwnChain(tt.chain))
			}
			if tt.set != "" {
				assert.Equal(t, tt.want, isOwnSet(tt.set))
			}
		})
	}
}

// TestNameHashIsTheJoinedDigest pins nameHash to its definition, the first 16 base32
// characters of the SHA-256 of the parts joined by NUL, for parts short and long enough to
// leave its stack buffer: a name that changed would orphan every chain and set in the kernel.
func TestNameHashIsTheJoinedDigest(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, parts := range [][]string{{}, {"pod"}, {"pod", "ns", "name"}, {"a", "", "b"}, {"policy", long, "ingress"}} {
		h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
		assert.Equal(t, base32.StdEncoding.EncodeToString(h[:])[:16], nameHash(parts...), "%q", parts)
	}
}
