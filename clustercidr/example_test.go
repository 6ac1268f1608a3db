package clustercidr_test

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/k3snet/k3snet/clustercidr"
)

// The Allocator is the pure core of the controller: the K3s documentation's example gives
// worker2 its pod CIDR from a ClusterCIDR selecting it by hostname, while every other node
// gets a block of the default ClusterCIDR built from --cluster-cidr.
func ExampleAllocator() {
	alloc, err := clustercidr.NewAllocator([]netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")})
	if err != nil {
		fmt.Println(err)
		return
	}
	def, err := clustercidr.DefaultClusterCIDRSpec([]netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}, 0, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	worker2 := clustercidr.ClusterCIDRSpec{
		NodeSelector: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"worker2"},
			}},
		}}},
		PerNodeHostBits: 8,
		IPv4:            "10.247.0.0/16",
	}
	if err := alloc.AddClusterCIDR(clustercidr.DefaultClusterCIDRName, def); err != nil {
		fmt.Println(err)
		return
	}
	if err := alloc.AddClusterCIDR("worker2-cidr", worker2); err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range []string{"worker1", "worker2", "worker3"} {
		a, err := alloc.Allocate(clustercidr.Node{
			Name:   name,
			Labels: map[string]string{"kubernetes.io/hostname": name},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(name, a.PodCIDRs, "from", a.ClusterCIDRs)
	}
	// Output:
	// worker1 [10.42.0.0/24] from [default-cluster-cidr]
	// worker2 [10.247.0.0/24] from [worker2-cidr]
	// worker3 [10.42.1.0/24] from [default-cluster-cidr]
}

// A dual-stack --cluster-cidr with the default node masks (/24 and /64) becomes a default
// ClusterCIDR of 8 host bits in both families, so each node gets a /24 and a /120.
func ExampleDefaultClusterCIDRSpec() {
	spec, err := clustercidr.DefaultClusterCIDRSpec([]netip.Prefix{
		netip.MustParsePrefix("10.42.0.0/16"),
		netip.MustParsePrefix("2001:cafe:42::/56"),
	}, 0, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("ipv4 %s ipv6 %s perNodeHostBits %d\n", spec.IPv4, spec.IPv6, spec.PerNodeHostBits)

	alloc, err := clustercidr.NewAllocator(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := alloc.AddClusterCIDR(clustercidr.DefaultClusterCIDRName, spec); err != nil {
		fmt.Println(err)
		return
	}
	a, err := alloc.Allocate(clustercidr.Node{Name: "server1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.PodCIDRs)
	// Output:
	// ipv4 10.42.0.0/16 ipv6 2001:cafe:42::/56 perNodeHostBits 8
	// [10.42.0.0/24 2001:cafe:42::/120]
}

// ValidateClusterCIDRSpec reports every invalid field of a ClusterCIDR at once, as the API
// server's validation of the removed networking.k8s.io/v1alpha1 type did.
func ExampleValidateClusterCIDRSpec() {
	err := clustercidr.ValidateClusterCIDRSpec(clustercidr.ClusterCIDRSpec{
		PerNodeHostBits: 2,
		IPv4:            "10.247.0.1/16",
	})
	fmt.Println(err)
	// Output:
	// spec.ipv4: "10.247.0.1/16" has host bits set: write 10.247.0.0/16
	// spec.perNodeHostBits: 2 is less than 4
}

// New validates the Options, reporting every invalid field at once, and builds the
// controller; nothing talks to the API server until Start.
func ExampleNew() {
	kube := fake.NewClientset()
	if _, err := clustercidr.New(kube, clustercidr.Options{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("controller built")

	_, err := clustercidr.New(kube, clustercidr.Options{
		ClusterCIDRs:     []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16"), netip.MustParsePrefix("10.52.0.0/16")},
		MultiClusterCIDR: true,
	})
	fmt.Println(err)
	// Output:
	// controller built
	// clustercidr: invalid options: ClusterCIDRs [10.42.0.0/16 10.52.0.0/16]: cluster CIDRs [10.42.0.0/16 10.52.0.0/16]: two IPv4 prefixes: invalid ClusterCIDR
	// option Dynamic: required with MultiClusterCIDR
}
