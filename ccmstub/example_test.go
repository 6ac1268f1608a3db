package ccmstub_test

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/k3snet/k3snet/ccmstub"
)

// NodeMetadata is what the stub writes onto a Node, derived from the annotations the node's
// agent wrote: addresses in K3s's order, providerID k3s://<node> and instance type k3s. An
// item that is neither an IP nor a DNS name is left out and reported.
func ExampleNodeMetadata() {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: "worker1",
		Annotations: map[string]string{
			"k3s.io/internal-ip": "10.0.0.5,fd00::5",
			"k3s.io/external-ip": "203.0.113.9,not-an-ip",
			"k3s.io/hostname":    "worker1.lan",
		},
	}}
	md := ccmstub.NodeMetadata(node, ccmstub.NewKeys("k3s"))
	fmt.Println("providerID:", md.ProviderID)
	fmt.Println("instance type:", md.InstanceType)
	for _, a := range md.Addresses {
		fmt.Printf("%s: %s\n", a.Type, a.Address)
	}
	for _, bad := range md.Invalid {
		fmt.Println("invalid:", bad)
	}
	fmt.Println("untainted once synced:", md.HasInternalIP())
	// Output:
	// providerID: k3s://worker1
	// instance type: k3s
	// InternalIP: 10.0.0.5
	// InternalIP: fd00::5
	// ExternalIP: 203.0.113.9
	// Hostname: worker1.lan
	// invalid: annotation k3s.io/external-ip: "not-an-ip" is not an IP address
	// untainted once synced: true
}

// NewKeys builds the annotation keys and providerID scheme from the program name, so RKE2's
// rke2.io/* keys come from the same code.
func ExampleNewKeys() {
	keys := ccmstub.NewKeys("rke2")
	fmt.Println(keys.InternalIP, keys.ExternalIP, keys.Hostname)
	fmt.Println(keys.ProviderIDPrefix + "node1")
	// A program name must be a DNS label to start annotation keys and a URL scheme.
	fmt.Println("valid:", ccmstub.NewKeys("RKE 2").Validate() == nil)
	// Output:
	// rke2.io/internal-ip rke2.io/external-ip rke2.io/hostname
	// rke2://node1
	// valid: false
}

// ParseIPList reads repeatable --node-ip style flags: comma lists, order kept, repeats
// dropped, IPv4-mapped IPv6 turned into IPv4; addresses no other host can reach are refused.
func ExampleParseIPList() {
	ips, err := ccmstub.ParseIPList("10.0.0.5,fd00::5", "10.0.0.5", "::ffff:10.0.0.6")
	fmt.Println(ips, err)

	_, err = ccmstub.ParseIPList("0.0.0.0,127.0.0.1")
	fmt.Println(err)
	// Output:
	// [10.0.0.5 fd00::5 10.0.0.6] <nil>
	// "0.0.0.0" is the unspecified address: not usable as a node address
	// "127.0.0.1" is a loopback address: not usable as a node address
}

// ResolveNodeName follows K3s: --node-name, else $K3S_NODE_NAME, else the lower-cased host
// name, refusing names such as localhost.
func ExampleResolveNodeName() {
	noEnv := func(string) string { return "" }
	host := func(name string) func() (string, error) {
		return func() (string, error) { return name, nil }
	}
	name, err := ccmstub.ResolveNodeName("", noEnv, host("Worker1"))
	fmt.Println(name, err)

	env := func(key string) string {
		if key == ccmstub.NodeNameEnv {
			return "from-env"
		}
		return ""
	}
	name, err = ccmstub.ResolveNodeName("", env, host("worker1"))
	fmt.Println(name, err)

	_, err = ccmstub.ResolveNodeName("", noEnv, host("localhost"))
	fmt.Println(err)
	// Output:
	// worker1 <nil>
	// from-env <nil>
	// invalid node name: the hostname "localhost" cannot name a node; pass --node-name or set K3S_NODE_NAME
}

// AnnotateNode is the agent side: it publishes the node's addresses as the annotations the
// stub reads. Here a fake clientset stands in for the API server.
func ExampleAnnotateNode() {
	ctx := context.Background()
	client := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker1"}})
	err := ccmstub.AnnotateNode(ctx, client, ccmstub.NodeConfig{
		Name:        "worker1",
		InternalIPs: []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")},
		ExternalIPs: []netip.Addr{netip.MustParseAddr("203.0.113.9")},
		Hostname:    "worker1.lan",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	node, err := client.CoreV1().Nodes().Get(ctx, "worker1", metav1.GetOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, key := range slices.Sorted(maps.Keys(node.Annotations)) {
		fmt.Printf("%s=%s\n", key, node.Annotations[key])
	}
	// Output:
	// k3s.io/external-ip=203.0.113.9
	// k3s.io/hostname=worker1.lan
	// k3s.io/internal-ip=10.0.0.5,fd00::5
}

// New checks the Options: hosting ServiceLB is K3s's default, so a stub without a
// LoadBalancer must say it runs none.
func ExampleNew() {
	client := fake.NewClientset()
	_, err := ccmstub.New(client, ccmstub.Options{})
	fmt.Println(err)

	if _, err := ccmstub.New(client, ccmstub.Options{DisableLoadBalancer: true}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("node part only: built")
	// Output:
	// ccmstub: invalid options: option LoadBalancer is nil while the load-balancer part is on; pass the ServiceLB controller or set DisableLoadBalancer
	// node part only: built
}
