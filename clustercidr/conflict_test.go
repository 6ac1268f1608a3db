package clustercidr

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAfterConflict(t *testing.T) {
	block := []netip.Prefix{netip.MustParsePrefix("10.42.3.0/24")}
	other := []netip.Prefix{netip.MustParsePrefix("10.42.9.0/24")}
	asked := Node{Name: "a", Labels: map[string]string{"pool": "x"}}
	tests := []struct {
		name     string
		fresh    Node
		freshErr error
		want     conflictOutcome
	}{
		{name: "still no CIDRs, same labels: patch the same block again",
			fresh: Node{Name: "a", Labels: map[string]string{"pool": "x"}}, want: conflictRetry},
		{name: "still no CIDRs, new labels: choose again",
			fresh: Node{Name: "a", Labels: map[string]string{"pool": "y"}}, want: conflictRechoose},
		{name: "labels gone: choose again",
			fresh: Node{Name: "a"}, want: conflictRechoose},
		{name: "our block written by someone (a timed-out patch of ours): keep it",
			fresh: Node{Name: "a", Labels: map[string]string{"pool": "y"}, PodCIDRs: block}, want: conflictSameCIDRs},
		{name: "other CIDRs: another allocator is at work",
			fresh: Node{Name: "a", Labels: map[string]string{"pool": "x"}, PodCIDRs: other}, want: conflictOtherAllocator},
		{name: "our block plus another family: another allocator",
			fresh: Node{Name: "a", PodCIDRs: append(block, netip.MustParsePrefix("fd00:42::/64"))}, want: conflictOtherAllocator},
		{name: "unusable CIDRs on the fresh Node: refuse them, whatever else",
			fresh: Node{Name: "a"}, freshErr: errors.New("spec.podCIDRs: bad"), want: conflictFreshUnusable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, afterConflict(asked, block, tt.fresh, tt.freshErr))
		})
	}
}
