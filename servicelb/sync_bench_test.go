package servicelb

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// BenchmarkSync measures one sync of one Service with caches that hold 200, 1,000 or 2,000
// served Services on 50 nodes, each with its DaemonSet and a ready LB pod per node (up to
// 100,000 pods). The input is simulated: caches filled by hand, a fake client, no API server.
// "published" is a Service whose status already lists its nodes, the sync a resync or an LB
// pod event runs, which writes nothing; "unplaced" is a Service with its DaemonSet but no LB
// pod yet, whose sync also places it on the nodes. ns/op should not grow with the Services:
// a sync reads its own Service's objects, not every Service's.
func BenchmarkSync(b *testing.B) {
	for _, services := range []int{200, 1000, 2000} {
		c, published, unplaced := newSyncBench(b, services, scaleNodes)
		for _, tc := range []struct {
			name string
			key  cache.ObjectName
		}{{"published", published}, {"unplaced", unplaced}} {
			b.Run(fmt.Sprintf("%s/services=%d/nodes=%d", tc.name, services, scaleNodes), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.sync(b.Context(), tc.key); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		client := c.client.(*fake.Clientset)
		for _, a := range client.Actions() {
			if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
				b.Fatalf("a sync of an up-to-date Service wrote: %v", a)
			}
		}
	}
}

// newSyncBench returns a controller whose caches hold services served Services on nodes
// nodes, the key of one of them and that of one more Service without LB pods.
func newSyncBench(b *testing.B, services, nodes int) (c *Controller, published, unplaced cache.ObjectName) {
	client := fake.NewClientset()
	c, err := New(client, Options{})
	if err != nil {
		b.Fatal(err)
	}
	c.recorder = &record.FakeRecorder{} // no channel: Events are dropped
	factory := informers.NewSharedInformerFactory(client, 0)
	podInf, dsInf := factory.Core().V1().Pods().Informer(), factory.Apps().V1().DaemonSets().Informer()
	if err := c.useLBCaches(podInf, dsInf); err != nil {
		b.Fatal(err)
	}
	add := func(inf cache.SharedIndexInformer, obj runtime.Object) {
		if err := inf.GetIndexer().Add(obj); err != nil {
			b.Fatal(err)
		}
	}
	nodeMap := map[string]*corev1.Node{}
	for i := range nodes {
		n := makeNode(fmt.Sprintf("node-%02d", i), internalIP(fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)))
		nodeMap[n.Name] = n
		add(factory.Core().V1().Nodes().Informer(), n)
	}
	params := daemonSetParams{keys: c.keys, namespace: c.opts.Namespace, image: c.opts.Image,
		priorityClassName: c.opts.DefaultPriorityClassName}
	podIP := 0
	for i := range services + 1 {
		port := int32(20000 + i)
		svc := makeService(withName("bench", fmt.Sprintf("svc-%04d", i)),
			withUID(types.UID(fmt.Sprintf("%08x-0000-4000-8000-000000000000", i))),
			withPorts(svcPort(corev1.ProtocolTCP, port, 0)))
		svc.Finalizers = []string{LoadBalancerCleanupFinalizer}
		ds, err := newDaemonSet(svc, params)
		if err != nil {
			b.Fatal(err)
		}
		add(dsInf, ds)
		if i == services { // the unplaced one: no LB pod yet
			add(factory.Core().V1().Services().Informer(), svc)
			unplaced = cache.MetaObjectToName(svc)
			break
		}
		var pods []*corev1.Pod
		for name := range nodeMap {
			pod := makePod(c.opts.Namespace, ds.Name+"-"+name, name, svclbOf(svc), hostPortOn(port, corev1.ProtocolTCP),
				ready(fmt.Sprintf("10.%d.%d.%d", 42+podIP>>16, podIP>>8&0xff, podIP&0xff), corev1.ConditionTrue))
			podIP++
			pods = append(pods, pod)
			add(podInf, pod)
		}
		svc.Status.LoadBalancer.Ingress = loadBalancerIngress(svc, pods, nodeMap, nil, c.opts.IPMode, c.keys)
		add(factory.Core().V1().Services().Informer(), svc)
		if i == services/2 {
			published = cache.MetaObjectToName(svc)
		}
	}
	c.services = factory.Core().V1().Services().Lister()
	c.nodes = factory.Core().V1().Nodes().Lister()
	c.slices = factory.Discovery().V1().EndpointSlices().Lister()
	return c, published, unplaced
}
