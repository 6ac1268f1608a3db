package servicelb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	compmetrics "k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"

	"github.com/k3snet/k3snet/internal/benchworkload"
	"github.com/k3snet/k3snet/internal/procstat"
)

// BenchmarkScale measures how the controller's own cost grows with the number of
// LoadBalancer Services at 50 nodes: 200 Services (the workload of record, BenchmarkEndToEnd's
// largest), 1,000 and 2,000 (K3SNET_SCALE_MAX limits the largest multiple of 200, default 1).
// It reports the controller's writes per Service by kind (the goal is one finalizer patch, one
// DaemonSet apply, one status patch and two Events at every size), its syncs per Service, the
// CPU time of this process per Service, and its live heap per Service once every status is
// published.
//
// 2,000 Services on 50 nodes are 100,000 LB pods, which the DaemonSet controller, the
// scheduler and kwok cannot create on this machine in a benchmark's time, and which
// BenchmarkEndToEnd shows to set the pace long before the controller does. So the Services,
// their finalizers, the DaemonSets the controller applies, the status patches and the Events
// go to the real API server, and the nodes and the LB pods are simulated: the controller's
// client serves Nodes and pods from the benchmark (simulatedClient), which plays the
// DaemonSet controller and the kubelets. When a DaemonSet arrives on the controller's watch,
// the benchmark hands its pod informer one pod per node, rendered from the DaemonSet's
// template as the DaemonSet controller would and already Ready with an IP, as a kubelet would
// report it. The API server has no such nodes, so its DaemonSet controller creates no pods.
// Everything the controller runs is its own code: informers, handlers, queue, sync, the
// placement of a Service without ready pods, the status rule and the writes. What is left
// out is the pods' lifecycle (creation pace, readiness one by one), whose effect on the
// writes BenchmarkEndToEnd measures at 200 x 20.
//
// CPU is this process's: the controller, the simulation (rendering 50 pods per DaemonSet,
// reported as sim-cpu-s, which stands in for decoding them from a watch) and the client that
// creates the Services. The heap holds what the controller caches (the simulated pods have no
// managedFields, which real ones carry unless the informer strips them). One op is the whole
// run, from the first Service created to the last status published.
func BenchmarkScale(b *testing.B) {
	maxScale := benchworkload.ScaleMax(1)
	for _, scale := range []int{1, 5, 10} {
		if scale > maxScale {
			break
		}
		b.Run(fmt.Sprintf("services=%d/nodes=%d", scale*scaleServices, scaleNodes), func(b *testing.B) {
			benchmarkScale(b, scale*scaleServices, scaleNodes)
		})
	}
}

const (
	scaleServices = 200
	scaleNodes    = 50
	// scaleCreators create the Services concurrently, so their creation does not set the pace.
	scaleCreators = 8
)

func benchmarkScale(b *testing.B, services, nodes int) {
	const basePort = 20000
	sim := newLBSimulation(nodes)
	// The sync counter counts only once registered.
	h := newWrappedHarness(b, Options{MetricsRegistry: compmetrics.NewKubeRegistry()}, sim.client)

	for i := range b.N {
		names := make([]string, services)
		for s := range services {
			names[s] = fmt.Sprintf("svc-%d-%d", i, s)
		}
		heapBefore := gcLiveHeap()
		before := h.writes.Count()
		syncsBefore := syncCount(b, h.ctrl)
		stopHeap := procstat.SamplePeakHeap(50 * time.Millisecond)
		cpuBefore := procstat.SelfCPU(b)
		start := time.Now()
		stopSim := sim.run()
		sim.resetSpent()

		work := make(chan int)
		errs := make([]error, services)
		var wg sync.WaitGroup
		for range scaleCreators {
			wg.Go(func() {
				for s := range work {
					_, errs[s] = h.admin.CoreV1().Services(h.ns).Create(b.Context(),
						h.lbService(names[s], int32(basePort+s)), metav1.CreateOptions{})
				}
			})
		}
		for s := range services {
			work <- s
		}
		close(work)
		wg.Wait()
		require.NoError(b, errors.Join(errs...), "creating the Services")
		// The controller's own Service cache says when every status is published, without a
		// list of thousands of Services from the API server in this process every poll.
		err := pollLong(b, func(context.Context) (bool, error) {
			svcs, err := h.ctrl.services.Services(h.ns).List(labels.Everything())
			if err != nil {
				return false, err
			}
			done := 0
			for _, svc := range svcs {
				if len(svc.Status.LoadBalancer.Ingress) == nodes {
					done++
				}
			}
			return done == services, nil
		})
		require.NoError(b, err, "every Service should publish %d addresses", nodes)
		elapsed := time.Since(start)
		cpu := procstat.SelfCPU(b) - cpuBefore
		peak := stopHeap()
		simCPU := sim.spent()
		// Late writes (an Event still in the recorder's queue) belong to the run.
		time.Sleep(time.Second)
		writes := h.writes.Since(before)

		b.ReportMetric(elapsed.Seconds(), "s/all-statuses")
		b.ReportMetric(float64(len(writes))/float64(services), "writes/svc")
		for _, c := range classifyWrites(writes) {
			b.ReportMetric(float64(c.n)/float64(services), c.what+"/svc")
		}
		b.ReportMetric((syncCount(b, h.ctrl)-syncsBefore)/float64(services), "syncs/svc")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(services), "cpu-ms/svc")
		b.ReportMetric(simCPU.Seconds(), "sim-cpu-s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric((float64(gcLiveHeap())-float64(heapBefore))/(1<<10)/float64(services), "heap-KiB/svc")
		if pods, err := h.admin.CoreV1().Pods(h.lbNS).List(b.Context(), metav1.ListOptions{}); err == nil {
			b.Logf("real LB pods in the API server (the DaemonSet controller found no node): %d", len(pods.Items))
		}
		if load, err := os.ReadFile("/proc/loadavg"); err == nil {
			b.Logf("load average: %s", load[:len(load)-1])
		}

		b.StopTimer()
		deleteAndWait(b, h, names)
		stopSim()
		b.StartTimer()
	}
}

// deleteAndWait deletes the Services and waits until the controller has deleted their
// DaemonSets, so the next op starts from an empty LB namespace.
func deleteAndWait(b *testing.B, h *harness, names []string) {
	for _, name := range names {
		require.NoError(b, h.admin.CoreV1().Services(h.ns).Delete(b.Context(), name, metav1.DeleteOptions{}))
	}
	err := pollLong(b, func(ctx context.Context) (bool, error) {
		dss, err := h.admin.AppsV1().DaemonSets(h.lbNS).List(ctx, metav1.ListOptions{})
		return err == nil && len(dss.Items) == 0, err
	})
	require.NoError(b, err, "every DaemonSet should be deleted")
}

// syncCount is how many syncs the controller has run.
func syncCount(b *testing.B, c *Controller) float64 {
	n, err := testutil.GetCounterMetricValue(c.metrics.syncs.WithLabelValues("success"))
	require.NoError(b, err)
	e, err := testutil.GetCounterMetricValue(c.metrics.syncs.WithLabelValues("error"))
	require.NoError(b, err)
	return n + e
}

// lbSimulation plays the nodes, the DaemonSet controller and the kubelets for the controller:
// its client serves the nodes and the LB pods the simulation makes.
type lbSimulation struct {
	nodes []*corev1.Node
	pods  simulatedWatch
	// daemonSetEvents are the events of the controller's DaemonSet watch, teed off it.
	daemonSetEvents chan watch.Event
	// seen holds, per DaemonSet name, the labels its pods carry; podIP numbers the pods.
	seen  map[string]map[string]string
	podIP int
	// rendering is the time spent rendering pods, in nanoseconds.
	rendering atomic.Int64
}

func newLBSimulation(nodes int) *lbSimulation {
	s := &lbSimulation{daemonSetEvents: make(chan watch.Event, 10000), seen: map[string]map[string]string{}}
	for i := range nodes {
		name := fmt.Sprintf("sim-node-%02d", i)
		n := makeNode(name, internalIP(fmt.Sprintf("10.90.%d.%d", i/250, i%250+1)),
			nodeLabel(corev1.LabelHostname, name), nodeLabel(corev1.LabelOSStable, "linux"))
		n.ResourceVersion = "1"
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		s.nodes = append(s.nodes, n)
	}
	return s
}

// client wraps the controller's client: Nodes and pods come from the simulation, the rest
// from the API server, and the simulation sees the DaemonSets through the controller's watch.
func (s *lbSimulation) client(real kubernetes.Interface) kubernetes.Interface {
	return &simulatedClient{Interface: real, core: &simulatedCore{CoreV1Interface: real.CoreV1(), sim: s},
		apps: &simulatedApps{AppsV1Interface: real.AppsV1(), sim: s}}
}

// run starts the simulated DaemonSet controller: it hands the pod informer the pods of each
// DaemonSet the controller's own watch delivers, and deletes those of each DaemonSet deleted.
// The returned function stops it.
func (s *lbSimulation) run() func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case e := <-s.daemonSetEvents:
				s.handle(e)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// handle makes the pods of a DaemonSet seen for the first time, and deletes those of a
// DaemonSet deleted.
func (s *lbSimulation) handle(e watch.Event) {
	ds, ok := e.Object.(*appsv1.DaemonSet)
	// A bookmark carries an empty DaemonSet with only a resourceVersion.
	if !ok || (e.Type != watch.Added && e.Type != watch.Modified && e.Type != watch.Deleted) {
		return
	}
	if e.Type == watch.Deleted {
		lbls, ok := s.seen[ds.Name]
		if !ok {
			return
		}
		delete(s.seen, ds.Name)
		for _, node := range s.nodes {
			s.pods.send(watch.Deleted, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
				Namespace: ds.Namespace, Name: ds.Name + "-" + node.Name, Labels: lbls,
			}})
		}
		return
	}
	if _, ok := s.seen[ds.Name]; ok {
		return
	}
	s.seen[ds.Name] = ds.Spec.Template.Labels
	// The pods appear bound to their nodes, then turn Ready, as the DaemonSet controller and
	// the kubelets make them: a sync in between waits for them (podsSettling) instead of
	// publishing part of the nodes.
	pods := make([]*corev1.Pod, 0, len(s.nodes))
	for _, node := range s.nodes {
		t0 := time.Now()
		pod := simulatedLBPod(ds, node, s.podIP)
		s.rendering.Add(int64(time.Since(t0)))
		s.podIP++
		pending := pod.DeepCopy()
		pending.ResourceVersion += "-pending"
		pending.Status = corev1.PodStatus{Phase: corev1.PodPending}
		s.pods.send(watch.Added, pending)
		pods = append(pods, pod)
	}
	for _, pod := range pods {
		s.pods.send(watch.Modified, pod)
	}
}

// spent is the time spent rendering pods since resetSpent, which is CPU time: rendering
// does not block.
func (s *lbSimulation) spent() time.Duration { return time.Duration(s.rendering.Load()) }

func (s *lbSimulation) resetSpent() { s.rendering.Store(0) }

// simulatedLBPod is the pod the DaemonSet controller creates for ds on node, as its kubelet
// reports it once Ready: the template's spec pinned to the node by a required node affinity,
// the DaemonSet as controller, and a running container per template container.
func simulatedLBPod(ds *appsv1.DaemonSet, node *corev1.Node, n int) *corev1.Pod {
	spec := ds.Spec.Template.Spec.DeepCopy()
	spec.NodeName = node.Name
	spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node.Name}}},
		}}},
	}}
	lbls := maps.Clone(ds.Spec.Template.Labels)
	lbls[appsv1.ControllerRevisionHashLabelKey] = "5d4f8c7b9"
	lbls[appsv1.DefaultDaemonSetUniqueLabelKey] = "1"
	now := metav1.Now()
	ip := fmt.Sprintf("10.%d.%d.%d", 42+n>>16, n>>8&0xff, n&0xff)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ds.Namespace, Name: ds.Name + "-" + node.Name, Labels: lbls,
			UID: types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012x", n)), ResourceVersion: strconv.Itoa(n + 1),
			CreationTimestamp: now,
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))},
		},
		Spec: *spec,
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: node.Status.Addresses[0].Address, PodIP: ip,
			HostIPs: []corev1.HostIP{{IP: node.Status.Addresses[0].Address}}, PodIPs: []corev1.PodIP{{IP: ip}},
			StartTime: &now, QOSClass: corev1.PodQOSBestEffort,
		},
	}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized,
		corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, c := range spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: new(true),
			ContainerID: fmt.Sprintf("containerd://%064x", n),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return pod
}

// simulatedClient serves CoreV1 through simulatedCore and everything else from the API server.
type simulatedClient struct {
	kubernetes.Interface
	core *simulatedCore
	apps *simulatedApps
}

func (c *simulatedClient) CoreV1() corev1client.CoreV1Interface { return c.core }

func (c *simulatedClient) AppsV1() appsv1client.AppsV1Interface { return c.apps }

// simulatedApps tees the DaemonSet watch off to the simulation, which so reads no DaemonSet
// of its own: a second informer or a poll of the cache would cost this process CPU that is
// not the controller's.
type simulatedApps struct {
	appsv1client.AppsV1Interface
	sim *lbSimulation
}

func (a *simulatedApps) DaemonSets(namespace string) appsv1client.DaemonSetInterface {
	return simulatedDaemonSets{DaemonSetInterface: a.AppsV1Interface.DaemonSets(namespace), sim: a.sim}
}

type simulatedDaemonSets struct {
	appsv1client.DaemonSetInterface
	sim *lbSimulation
}

func (d simulatedDaemonSets) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := d.DaemonSetInterface.Watch(ctx, opts)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		d.sim.daemonSetEvents <- e
		return e, true
	}), nil
}

// IsWatchListSemanticsUnSupported makes the informers list, then watch: the simulated watches
// do not stream the initial list as a watch-list would.
func (c *simulatedClient) IsWatchListSemanticsUnSupported() bool { return true }

// simulatedCore serves Nodes and pods from the simulation, the rest of CoreV1 (Services,
// Events, the namespace) from the API server.
type simulatedCore struct {
	corev1client.CoreV1Interface
	sim *lbSimulation
}

func (c *simulatedCore) Nodes() corev1client.NodeInterface {
	return simulatedNodes{NodeInterface: c.CoreV1Interface.Nodes(), sim: c.sim}
}

func (c *simulatedCore) Pods(namespace string) corev1client.PodInterface {
	return simulatedPods{PodInterface: c.CoreV1Interface.Pods(namespace), sim: c.sim}
}

type simulatedNodes struct {
	corev1client.NodeInterface
	sim *lbSimulation
}

func (n simulatedNodes) List(context.Context, metav1.ListOptions) (*corev1.NodeList, error) {
	list := &corev1.NodeList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
	for _, node := range n.sim.nodes {
		list.Items = append(list.Items, *node.DeepCopy())
	}
	return list, nil
}

// Watch returns a watch on which nothing happens: the simulated nodes do not change.
func (n simulatedNodes) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return watch.NewFake(), nil
}

type simulatedPods struct {
	corev1client.PodInterface
	sim *lbSimulation
}

// List returns no pod: the informer lists once, before the simulation makes any.
func (p simulatedPods) List(context.Context, metav1.ListOptions) (*corev1.PodList, error) {
	return &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "0"}}, nil
}

func (p simulatedPods) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return p.sim.pods.open(), nil
}

// simulatedWatch delivers the simulation's pod events to the one informer watching. It keeps
// no pod, so the heap holds only the informer's copy.
type simulatedWatch struct {
	mu      sync.Mutex
	watcher *watch.FakeWatcher
}

func (w *simulatedWatch) open() watch.Interface {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watcher = watch.NewFakeWithChanSize(1024, false)
	return w.watcher
}

func (w *simulatedWatch) send(typ watch.EventType, pod *corev1.Pod) {
	w.mu.Lock()
	fw := w.watcher
	w.mu.Unlock()
	if fw != nil {
		fw.Action(typ, pod)
	}
}

// gcLiveHeap is the heap held by live objects after a collection.
func gcLiveHeap() uint64 {
	runtime.GC()
	return procstat.LiveHeap()
}
