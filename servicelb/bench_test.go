package servicelb

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The benchmarks run the rules over 1,000 Services and 1,000 nodes, the cluster size K3s users
// report for ServiceLB at its largest. One op is the whole sweep (every Service once), as a
// controller resync would do it; ns/svc is that divided by the Services.

const (
	benchServices = 1000
	benchNodes    = 1000
)

type benchCluster struct {
	services []*corev1.Service
	nodes    []*corev1.Node
	nodeMap  map[string]*corev1.Node
	// hostPortPods are the pods holding host ports: per node a hostNetwork exporter, a DNS
	// cache on 53/UDP+TCP and, on every third node, an ingress controller on 80/443, plus the
	// LB pods of 50 Services spread over the nodes.
	hostPortPods []*corev1.Pod
	// lbPods are one ready LB pod per node, what a Service served everywhere has.
	lbPods []*corev1.Pod
	// slices holds the EndpointSlices of each ETP Local Service.
	slices map[string][]*discoveryv1.EndpointSlice
}

func newBenchCluster() *benchCluster {
	c := &benchCluster{nodeMap: map[string]*corev1.Node{}, slices: map[string][]*discoveryv1.EndpointSlice{}}
	pools := []string{"edge", "core", "dmz", "lab"}
	for i := range benchNodes {
		name := fmt.Sprintf("node-%04d", i)
		tweaks := []nodeTweak{
			internalIP(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), fmt.Sprintf("fd00::%x", i+1)),
			enableLB("true"),
			nodeLabel(testKeys.LBPool, pools[i%len(pools)]),
			nodeLabel("kubernetes.io/hostname", name),
			nodeLabel("kubernetes.io/os", "linux"),
		}
		if i%4 == 0 {
			tweaks = append(tweaks, externalIP(fmt.Sprintf("203.0.%d.%d", i/250, i%250+1)))
		}
		if i%10 == 0 {
			tweaks = append(tweaks, nodeLabel(testKeys.PoolLabel("lab"), "true"))
		}
		if i < 3 {
			tweaks = append(tweaks, taint("node-role.kubernetes.io/control-plane", "", corev1.TaintEffectNoSchedule))
		}
		if i%50 == 7 {
			tweaks = append(tweaks, taint("dedicated", "db", corev1.TaintEffectNoSchedule), enableLB("false"))
		}
		n := makeNode(name, tweaks...)
		c.nodes = append(c.nodes, n)
		c.nodeMap[name] = n

		c.hostPortPods = append(c.hostPortPods,
			makePod("monitoring", "node-exporter-"+name, name, ownedBy("node-exporter"), hostNetworkPort(9100, "TCP")),
			makePod("kube-system", "node-local-dns-"+name, name, ownedBy("node-local-dns"),
				hostPortOn(53, "UDP"), hostPortOn(53, "TCP")),
		)
		if i%3 == 0 {
			c.hostPortPods = append(c.hostPortPods, makePod("ingress", "ingress-"+name, name,
				ownedBy("ingress-nginx"), hostPortOn(80, "TCP"), hostPortOn(443, "TCP")))
		}
		c.lbPods = append(c.lbPods, makePod("kube-system", "svclb-bench-"+name, name,
			ready(fmt.Sprintf("10.42.%d.%d", i/250, i%250+2), corev1.ConditionTrue)))
	}

	for i := range benchServices {
		tweaks := []svcTweak{
			withName(fmt.Sprintf("ns-%02d", i%20), fmt.Sprintf("svc-%04d", i)),
			withUID(types.UID(fmt.Sprintf("%08x-0000-4000-8000-000000000000", i))),
			withPorts(svcPort("TCP", int32(8000+i%200), int32(30000+i)), svcPort("TCP", int32(9000+i%200), int32(31000+i))),
		}
		if i%10 == 0 {
			tweaks = append(tweaks, withPorts(svcPort("TCP", 443, int32(30000+i)), svcPort("UDP", 53, int32(31000+i))))
		}
		if i%4 == 0 {
			tweaks = append(tweaks, withStack(fmt.Sprintf("10.43.%d.%d", i/250, i%250+1), fmt.Sprintf("fd00:43::%x", i+1)))
		} else {
			tweaks = append(tweaks, withStack(fmt.Sprintf("10.43.%d.%d", i/250, i%250+1)))
		}
		if i%3 == 0 {
			tweaks = append(tweaks, withPool(pools[i%len(pools)]))
		}
		if i%7 == 0 {
			tweaks = append(tweaks, withSourceRanges("192.168.0.0/16", "10.0.0.0/8", "2001:db8::/32"))
		}
		if i%11 == 0 {
			tweaks = append(tweaks, withAnnotation(testKeys.Tolerations, `[{"key":"dedicated","operator":"Equal","value":"db","effect":"NoSchedule"}]`))
		}
		local := i%5 == 0
		if local {
			tweaks = append(tweaks, withLocal())
		}
		svc := makeService(tweaks...)
		c.services = append(c.services, svc)
		if local {
			var eps []discoveryv1.Endpoint
			for j := range 10 {
				eps = append(eps, endpoint(fmt.Sprintf("node-%04d", (i*37+j*101)%benchNodes), new(true), "Pod"))
			}
			c.slices[svc.Namespace+"/"+svc.Name] = []*discoveryv1.EndpointSlice{makeSlice(svc.Namespace, svc.Name, eps...)}
		}
		// Every 20th Service already runs its LB pods on a slice of the nodes.
		if i%20 == 0 {
			for j := range 100 {
				node := fmt.Sprintf("node-%04d", (i*13+j)%benchNodes)
				c.hostPortPods = append(c.hostPortPods, makePod("kube-system",
					fmt.Sprintf("%s-%05d", daemonSetName(svc.Name, svc.UID), j), node, svclbOf(svc),
					hostPortOn(svc.Spec.Ports[0].Port, "TCP"), hostPortOn(svc.Spec.Ports[1].Port, svc.Spec.Ports[1].Protocol)))
			}
		}
	}
	return c
}

func reportPerService(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchServices), "ns/svc")
}

func BenchmarkNewDaemonSet(b *testing.B) {
	c := newBenchCluster()
	p := testParams()
	p.allowList = true
	b.ReportAllocs()
	for b.Loop() {
		for _, svc := range c.services {
			if _, err := newDaemonSet(svc, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportPerService(b)
}

func BenchmarkPlaceLoadBalancer(b *testing.B) {
	c := newBenchCluster()
	tolerations := make(map[*corev1.Service][]corev1.Toleration, len(c.services))
	for _, svc := range c.services {
		extra, errs := annotationTolerations(svc, testKeys)
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		tolerations[svc] = append(defaultTolerations(), extra...)
	}
	b.Run(fmt.Sprintf("index/pods=%d", len(c.hostPortPods)), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			indexHostPorts(c.hostPortPods, testKeys)
		}
	})
	b.Run(fmt.Sprintf("place/services=%d/nodes=%d", benchServices, benchNodes), func(b *testing.B) {
		b.ReportAllocs()
		eligible := 0
		for b.Loop() {
			idx := indexHostPorts(c.hostPortPods, testKeys)
			eligible = 0
			for _, svc := range c.services {
				eligible += len(placeLoadBalancer(svc, c.nodes, tolerations[svc], idx, testKeys).eligible)
			}
		}
		if eligible == 0 {
			b.Fatal("no Service found a node: the workload is wrong")
		}
		reportPerService(b)
	})
}

func BenchmarkLoadBalancerIngress(b *testing.B) {
	c := newBenchCluster()
	b.ReportAllocs()
	published := 0
	for b.Loop() {
		published = 0
		for _, svc := range c.services {
			ing := loadBalancerIngress(svc, c.lbPods, c.nodeMap, c.slices[svc.Namespace+"/"+svc.Name], "", testKeys)
			published += len(ing)
		}
	}
	if published == 0 {
		b.Fatal("no Service published an address: the workload is wrong")
	}
	reportPerService(b)
}
