package servicelb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/events"
)

const (
	// FieldManager is the server-side apply field manager that owns the DaemonSets' fields.
	FieldManager = "servicelb-controller"
	// ComponentName is the Event source and the work queue's name; K3s's controller uses the
	// same name for its client, recorder and logs.
	ComponentName = "service-lb-controller"
	// DefaultNamespace is the LB namespace unless Options.Namespace says otherwise.
	DefaultNamespace = "kube-system"

	// podBatchDelay is how long a Service waits after an LB pod event before it syncs. A new
	// DaemonSet's pods become ready one by one, and each would otherwise be a status write
	// and an Event; the queue merges the events of one window into one sync.
	podBatchDelay = 500 * time.Millisecond
	// statusSettleWindow is how long after an LB pod's creation a growing status waits for
	// it to become ready. A new DaemonSet's pods turn ready over seconds, not within one
	// podBatchDelay, and each step would be a status write and an Event; holding a growing
	// status while young pods are on their way publishes their nodes together. Removals are
	// never held, and a pod that never gets ready (its port is taken) delays nothing once older.
	statusSettleWindow = 5 * time.Second
	// boundPodSettleWindow is how long a growing status waits for an LB pod that the
	// scheduler has placed: its kubelet may still be pulling the image, and a loaded node
	// takes longer than statusSettleWindow to start it.
	boundPodSettleWindow = 15 * time.Second
)

// Options configures the ServiceLB controller. The zero value of each field means K3s's default.
type Options struct {
	// Namespace is where the per-Service DaemonSets live (K3s: --servicelb-namespace);
	// "" is DefaultNamespace.
	Namespace string
	// Program is the name the label and annotation keys are built from (see NewKeys); "" is
	// DefaultProgram, RKE2 passes "rke2".
	Program string
	// Image is the klipper-lb image of the LB pods; "" is DefaultImage.
	Image string
	// SystemDefaultRegistry prefixes Image, as K3s's --system-default-registry does.
	SystemDefaultRegistry string
	// DefaultPriorityClassName is the LB pods' priority class unless a Service overrides it;
	// "" is DefaultPriorityClassName.
	DefaultPriorityClassName string
	// LoadBalancerClass is the spec.loadBalancerClass this controller answers to besides
	// unclassed Services; "" means unclassed Services only (see serves).
	LoadBalancerClass string
	// IPMode is the ipMode of the published ingress entries unless a Service's ipmode
	// annotation says otherwise: "" or VIP (K3s's behaviour), or Proxy.
	IPMode corev1.LoadBalancerIPMode
	// EventRecorder records the Events on Services. When nil, Start builds one that writes
	// through the controller's client and stops it when its context ends.
	EventRecorder record.EventRecorder
	// Workers is the number of Services synced at once; 0 means 1, as K3s's
	// --concurrent-service-syncs default.
	Workers int
	// ReservedHostPorts are node ports no LoadBalancer Service may claim, for any protocol:
	// a Service with such a port gets a Warning Event (SyncLoadBalancerFailed), no DaemonSet
	// (one it had is deleted) and an empty status. By default none are reserved, as in K3s:
	// any user who may create a LoadBalancer Service can then take node ports such as the
	// kubelet's 10250 or the API server's 6443 on every node an LB pod fits on.
	ReservedHostPorts []int32
	// MetricsRegistry, if set, gets the controller's metrics: servicelb_syncs_total,
	// servicelb_status_updates_total and servicelb_served_services. Each Controller registers
	// its own, so give two instances two registries.
	MetricsRegistry metrics.KubeRegistry
}

// withDefaults returns o with every unset field set to K3s's default.
func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Program == "" {
		o.Program = DefaultProgram
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.DefaultPriorityClassName == "" {
		o.DefaultPriorityClassName = DefaultPriorityClassName
	}
	if o.IPMode == "" {
		o.IPMode = corev1.LoadBalancerIPModeVIP
	}
	if o.Workers == 0 {
		o.Workers = 1
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(o.Namespace) {
			errs = append(errs, fmt.Errorf("namespace %q: %s", o.Namespace, msg))
		}
	}
	if err := NewKeys(o.Program).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("program %q: %w", o.Program, err))
	}
	switch o.IPMode {
	case "", corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy:
	default:
		errs = append(errs, fmt.Errorf("ipMode %q: must be %s or %s", o.IPMode,
			corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy))
	}
	if o.LoadBalancerClass != "" {
		for _, msg := range validation.IsQualifiedName(o.LoadBalancerClass) {
			errs = append(errs, fmt.Errorf("loadBalancerClass %q: %s", o.LoadBalancerClass, msg))
		}
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("workers %d: must not be negative", o.Workers))
	}
	for _, p := range o.ReservedHostPorts {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("reserved host port %d: must be between 1 and 65535", p))
		}
	}
	return errors.Join(errs...)
}

// Controller is the ServiceLB controller. Build it with New and run it with Start.
type Controller struct {
	// client writes DaemonSets, Service status and finalizers, and Events when no recorder is given.
	client kubernetes.Interface
	opts   Options
	// keys are the label, annotation and finalizer names built once from opts.Program.
	keys Keys
	// queue holds the keys of Services to sync; every handler maps its object to one.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// recorder records Events on Services; set in Start when opts has none.
	recorder record.EventRecorder

	// The listers read the informers' caches, set in Start. pods and daemonSets come from a
	// factory of our own, restricted to the LB namespace and to objects that carry the svcname
	// label, so the controller neither caches every pod of the cluster nor needs to.
	services   corelisters.ServiceLister
	nodes      corelisters.NodeLister
	slices     discoverylisters.EndpointSliceLister
	pods       corelisters.PodLister
	daemonSets appslisters.DaemonSetLister

	// metrics are the controller's metrics, registered on opts.MetricsRegistry if set.
	metrics *controllerMetrics

	// mu guards warned, and services against the metrics collector, which may scrape
	// before Start sets it.
	mu sync.Mutex
	// warned holds, per Service, the last Warning message emitted for it, so a Warning is
	// emitted when it changes rather than on every sync. A Service in it waits for
	// capacity: a deleted LB pod frees host ports, so it is requeued then.
	warned map[cache.ObjectName]string

	// statuses and daemonSets remember our last writes until the informers deliver them, so
	// a sync in between neither writes the same again nor repeats its Event.
	statuses writeMemo[[]corev1.LoadBalancerIngress]
	applied  writeMemo[*appsv1.DaemonSet]
}

// New returns a Controller that talks to the API server through client.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	if client == nil {
		return nil, errors.New("servicelb: nil client")
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("servicelb: invalid options: %w", err)
	}
	opts = opts.withDefaults()
	c := &Controller{
		client:   client,
		opts:     opts,
		keys:     NewKeys(opts.Program),
		recorder: opts.EventRecorder,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: ComponentName},
		),
		warned: map[cache.ObjectName]string{},
	}
	var err error
	if c.metrics, err = newControllerMetrics(c, opts.MetricsRegistry); err != nil {
		return nil, fmt.Errorf("servicelb: %w", err)
	}
	return c, nil
}

// serviceLister returns the Service lister once Start has set it, else nil.
func (c *Controller) serviceLister() corelisters.ServiceLister {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.services
}

// Start ensures the LB namespace and its ServiceAccount, registers the informers the
// controller needs on factory, starts the factory (which is idempotent, so controllers can
// share one), waits for those caches, launches the workers and returns. Workers stop when
// ctx ends. Start may be called once.
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	logger := klog.FromContext(ctx).WithValues("controller", ComponentName)
	ctx = klog.NewContext(ctx, logger)

	if err := c.ensureNamespace(ctx); err != nil {
		c.queue.ShutDown()
		return err
	}

	svcInformer := factory.Core().V1().Services()
	nodeInformer := factory.Core().V1().Nodes()
	sliceInformer := factory.Discovery().V1().EndpointSlices()
	lbFactory := informers.NewSharedInformerFactoryWithOptions(c.client, 0,
		informers.WithNamespace(c.opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = c.keys.SvcName }))
	podInformer := lbFactory.Core().V1().Pods()
	dsInformer := lbFactory.Apps().V1().DaemonSets()

	c.mu.Lock()
	c.services = svcInformer.Lister()
	c.mu.Unlock()
	c.nodes = nodeInformer.Lister()
	c.slices = sliceInformer.Lister()
	c.pods = podInformer.Lister()
	c.daemonSets = dsInformer.Lister()

	var errs []error
	add := func(what string, inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
		if _, err := inf.AddEventHandler(h); err != nil {
			errs = append(errs, fmt.Errorf("adding %s handler: %w", what, err))
		}
	}
	add("Service", svcInformer.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.handleService,
		UpdateFunc: c.handleServiceUpdate,
		DeleteFunc: c.handleService,
	})
	add("Node", nodeInformer.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAllServices() },
		UpdateFunc: c.handleNodeUpdate,
		DeleteFunc: func(any) { c.enqueueAllServices() },
	})
	add("EndpointSlice", sliceInformer.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.handleEndpointSlice,
		UpdateFunc: func(old, cur any) { c.handleEndpointSliceUpdate(old, cur) },
		DeleteFunc: c.handleEndpointSlice,
	})
	add("Pod", podInformer.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.handlePodAdd,
		UpdateFunc: c.handlePodUpdate,
		DeleteFunc: c.handlePodDelete,
	})
	add("DaemonSet", dsInformer.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.handleOwned,
		UpdateFunc: c.handleDaemonSetUpdate,
		DeleteFunc: c.handleDaemonSetDelete,
	})
	if err := errors.Join(errs...); err != nil {
		c.queue.ShutDown()
		return fmt.Errorf("servicelb: %w", err)
	}

	if c.recorder == nil {
		c.recorder = events.NewRecorder(ctx, c.client, corev1.EventSource{Component: ComponentName}, 3)
	}

	factory.Start(ctx.Done())
	lbFactory.Start(ctx.Done())
	synced := []cache.InformerSynced{
		svcInformer.Informer().HasSynced, nodeInformer.Informer().HasSynced,
		sliceInformer.Informer().HasSynced, podInformer.Informer().HasSynced,
		dsInformer.Informer().HasSynced,
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		c.queue.ShutDown()
		return fmt.Errorf("servicelb: caches did not sync: %w", context.Cause(ctx))
	}

	logger.Info("Starting workers", "count", c.opts.Workers, "namespace", c.opts.Namespace)
	go func() {
		defer utilruntime.HandleCrashWithContext(ctx)
		defer c.queue.ShutDown()
		for range c.opts.Workers {
			go wait.UntilWithContext(ctx, c.runWorker, time.Second)
		}
		<-ctx.Done()
		logger.Info("Stopping workers")
	}()
	return nil
}

// ensureNamespace creates the LB namespace and the LB pods' ServiceAccount when missing
// (as K3s's ServiceLB does at start). Both are read first, so a restart writes nothing. The namespace is created
// bare: LB pods need NET_ADMIN and hostPort, which the Pod Security baseline refuses, so
// whoever labels it for Pod Security has to allow them.
func (c *Controller) ensureNamespace(ctx context.Context) error {
	ns := c.opts.Namespace
	_, err := c.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.client.CoreV1().Namespaces().Create(ctx,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("servicelb: ensuring namespace %s: %w", ns, err)
	}

	sas := c.client.CoreV1().ServiceAccounts(ns)
	_, err = sas.Get(ctx, ServiceAccountName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = sas.Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: ServiceAccountName, Namespace: ns},
			// The LB pods never talk to the API server.
			AutomountServiceAccountToken: new(false),
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("servicelb: ensuring ServiceAccount %s/%s: %w", ns, ServiceAccountName, err)
	}
	return nil
}

// handleService enqueues a Service that is ours to serve or to clean up. Deletions of every
// Service are enqueued: sync then removes whatever DaemonSet is left for it.
func (c *Controller) handleService(obj any) {
	svc, ok := unwrap(obj).(*corev1.Service)
	if !ok {
		return
	}
	if _, deleted := obj.(cache.DeletedFinalStateUnknown); deleted || c.interested(svc) {
		c.queue.Add(cache.MetaObjectToName(svc))
	}
}

func (c *Controller) handleServiceUpdate(old, cur any) {
	o, ok1 := old.(*corev1.Service)
	n, ok2 := cur.(*corev1.Service)
	// A resync delivers the same object again; it changes no answer (SC NewController).
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion {
		return
	}
	// serves(old) covers a Service that stops being ours, e.g. its type changed.
	if c.interested(o) || c.interested(n) {
		c.queue.Add(cache.MetaObjectToName(n))
	}
}

// interested reports whether svc is served, or carries a finalizer this controller removes.
func (c *Controller) interested(svc *corev1.Service) bool {
	return serves(svc, c.opts.LoadBalancerClass) ||
		slices.Contains(svc.Finalizers, LoadBalancerCleanupFinalizer) ||
		slices.Contains(svc.Finalizers, c.keys.LegacyFinalizer)
}

// handleNodeUpdate requeues every served Service when a node changes in a way that can change
// a DaemonSet or a status: labels (enablelb in both directions, K3s #14625; lbpool), addresses
// (K3s #7036), taints, or the start of its deletion. Heartbeats change none of these.
func (c *Controller) handleNodeUpdate(old, cur any) {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := cur.(*corev1.Node)
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion {
		return
	}
	if !maps.Equal(o.Labels, n.Labels) ||
		!slices.Equal(o.Status.Addresses, n.Status.Addresses) ||
		!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) {
		c.enqueueAllServices()
	}
}

// enqueueAllServices enqueues every served Service: allow-list mode and node addresses are
// cluster-wide facts every Service's DaemonSet or status depends on.
func (c *Controller) enqueueAllServices() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("listing Services from the cache: %w", err))
		return
	}
	for _, svc := range svcs {
		if serves(svc, c.opts.LoadBalancerClass) {
			c.queue.Add(cache.MetaObjectToName(svc))
		}
	}
}

// handleEndpointSlice enqueues the Service of an EndpointSlice when its status reads
// EndpointSlices, which only ETP Local Services do. Classed Services are skipped:
// K3s's status worker is enqueued for them and overwrites their status.
func (c *Controller) handleEndpointSlice(obj any) {
	es, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	svc, err := c.services.Services(es.Namespace).Get(name)
	if err != nil || !serves(svc, c.opts.LoadBalancerClass) ||
		svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		return
	}
	c.queue.Add(cache.MetaObjectToName(svc))
}

func (c *Controller) handleEndpointSliceUpdate(old, cur any) {
	if o, ok := old.(*discoveryv1.EndpointSlice); ok {
		if n, ok := cur.(*discoveryv1.EndpointSlice); ok && o.ResourceVersion == n.ResourceVersion {
			return
		}
	}
	c.handleEndpointSlice(cur)
}

// handleOwned maps an LB pod or DaemonSet to its Service through the svcname and svcnamespace
// labels: the Service lives in another namespace, so there is no owner reference.
func (c *Controller) handleOwned(obj any) {
	meta, ok := unwrap(obj).(metav1.Object)
	if !ok {
		return
	}
	name, ns := meta.GetLabels()[c.keys.SvcName], meta.GetLabels()[c.keys.SvcNamespace]
	if name == "" || ns == "" {
		return
	}
	c.queue.Add(cache.ObjectName{Namespace: ns, Name: name})
}

// handlePod enqueues the Service of an LB pod after podBatchDelay.
func (c *Controller) handlePod(obj any) {
	pod, ok := unwrap(obj).(*corev1.Pod)
	if !ok {
		return
	}
	name, ns := pod.Labels[c.keys.SvcName], pod.Labels[c.keys.SvcNamespace]
	if name == "" || ns == "" {
		return
	}
	c.queue.AddAfter(cache.ObjectName{Namespace: ns, Name: name}, podBatchDelay)
}

func (c *Controller) handlePodAdd(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok {
		c.warnSysctlForbidden(nil, pod)
	}
	c.handlePod(obj)
}

func (c *Controller) handlePodUpdate(old, cur any) {
	o, ok1 := old.(*corev1.Pod)
	n, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion {
		return
	}
	c.warnSysctlForbidden(o, n)
	c.handlePod(cur)
}

// warnSysctlForbidden emits a Warning on the Service of an LB pod its kubelet has just
// rejected for the forwarding sysctls. It runs on the pod event rather than in sync: the
// DaemonSet controller deletes a failed pod at once, so a sync may never see it, and the
// Service would stay Pending with nothing said.
func (c *Controller) warnSysctlForbidden(old, cur *corev1.Pod) {
	if !newlySysctlForbidden(old, cur) {
		return
	}
	name, ns := cur.Labels[c.keys.SvcName], cur.Labels[c.keys.SvcNamespace]
	if name == "" || ns == "" {
		return
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil || !serves(svc, c.opts.LoadBalancerClass) {
		return
	}
	c.recorder.Event(svc, corev1.EventTypeWarning, ReasonSysctlForbidden, sysctlForbiddenMessage(cur))
}

// handlePodDelete enqueues the pod's Service, and every Service waiting for a node: the
// deleted pod may have held the host port they need.
func (c *Controller) handlePodDelete(obj any) {
	c.handlePod(obj)
	c.mu.Lock()
	waiting := slices.Collect(maps.Keys(c.warned))
	c.mu.Unlock()
	for _, key := range waiting {
		c.queue.Add(key)
	}
}

// handleDaemonSetDelete forgets our last apply of the DaemonSet, which the cache no longer
// shows for a reason of its own, and enqueues its Service.
func (c *Controller) handleDaemonSetDelete(obj any) {
	if meta, ok := unwrap(obj).(metav1.Object); ok {
		c.applied.forget(cache.ObjectName{Namespace: meta.GetNamespace(), Name: meta.GetName()})
	}
	c.handleOwned(obj)
}

// handleDaemonSetUpdate enqueues the Service when its DaemonSet's spec or labels changed, so
// an edit by someone else is reverted; status-only updates (pod counts) are skipped.
func (c *Controller) handleDaemonSetUpdate(old, cur any) {
	o, ok1 := old.(*appsv1.DaemonSet)
	n, ok2 := cur.(*appsv1.DaemonSet)
	if !ok1 || !ok2 || (o.Generation == n.Generation && maps.Equal(o.Labels, n.Labels)) {
		return
	}
	c.handleOwned(cur)
}

// unwrap returns the last known object of a deletion the informer missed.
func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

// processNextWorkItem syncs one Service: an error requeues it with backoff, success forgets
// its failures.
func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		c.metrics.syncs.WithLabelValues("error").Inc()
		// A conflict only means the cache was behind; the retry reads the newer object. A
		// sync cut short by shutdown is not worth an error either.
		if apierrors.IsConflict(err) || ctx.Err() != nil {
			klog.FromContext(ctx).V(2).Info("Conflict syncing LoadBalancer Service, requeueing", "service", key, "err", err)
		} else {
			utilruntime.HandleErrorWithContext(ctx, err, "Syncing LoadBalancer Service, requeueing", "service", key)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.metrics.syncs.WithLabelValues("success").Inc()
	c.queue.Forget(key)
	return true
}

// sync brings one Service's DaemonSet, finalizers and status to what the caches say they
// should be. It reads only from the listers and writes only what differs, so a second sync of
// an unchanged Service writes nothing.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	logger := klog.FromContext(ctx).WithValues("service", key.String())
	ctx = klog.NewContext(ctx, logger)

	svc, err := c.services.Services(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		// Gone without our finalizer (or after it was removed): only a DaemonSet can be left.
		c.forgetWarning(key)
		c.statuses.forget(key)
		return c.deleteDaemonSets(ctx, key, nil, "")
	}
	if err != nil {
		return fmt.Errorf("getting Service %s from the cache: %w", key, err)
	}
	if svc.DeletionTimestamp != nil || !serves(svc, c.opts.LoadBalancerClass) {
		return c.cleanup(ctx, svc)
	}
	return c.syncServed(ctx, svc)
}

// syncServed serves svc: finalizer first, so that nothing we create can outlive the Service
// unnoticed, then the DaemonSet, then the status and its Events.
func (c *Controller) syncServed(ctx context.Context, svc *corev1.Service) error {
	logger := klog.FromContext(ctx)
	key := cache.MetaObjectToName(svc)

	svc, err := c.setFinalizers(ctx, svc, true)
	if apierrors.IsNotFound(err) {
		// Deleted since the cache saw it; its delete event syncs it again.
		logger.V(2).Info("Service is gone")
		return nil
	}
	if err != nil {
		return err
	}

	if reserved := reservedPortErrors(svc, c.opts.ReservedHostPorts); len(reserved) > 0 {
		return c.refuseReserved(ctx, svc, reserved)
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing Nodes from the cache: %w", err)
	}
	want, err := newDaemonSet(svc, daemonSetParams{
		keys:              c.keys,
		namespace:         c.opts.Namespace,
		image:             c.opts.Image,
		registry:          c.opts.SystemDefaultRegistry,
		priorityClassName: c.opts.DefaultPriorityClassName,
		allowList:         allowListMode(nodes, c.keys),
	})
	if invalid := (*invalidServiceError)(nil); errors.As(err, &invalid) {
		// A bad spec is permanent until the Service changes, which requeues it: leave the
		// DaemonSet as it is and absorb the error.
		logger.Info("Service cannot be served", "err", err)
		c.warn(svc, ReasonSyncLoadBalancerFailed, err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	if err := c.applyDaemonSet(ctx, svc, want); err != nil {
		return err
	}
	// A Service deleted and re-created under the same name has a new UID and so a new
	// DaemonSet name; the old DaemonSet's pods would hold its ports.
	if err := c.deleteDaemonSets(ctx, key, svc, want.Name); err != nil {
		return err
	}

	ingress, lbPods, err := c.ingress(svc)
	if err != nil {
		return err
	}
	old := c.storedIngress(svc)
	if !ingressEqual(old, ingress) && ingressGrows(old, ingress) {
		now := time.Now()
		wait := podsSettling(lbPods, now, statusSettleWindow, boundPodSettleWindow)
		if ds, err := c.daemonSets.DaemonSets(want.Namespace).Get(want.Name); err == nil {
			wait = max(wait, daemonSetFilling(ds, lbPods, now, statusSettleWindow))
		}
		if wait > 0 {
			logger.V(4).Info("Waiting for more LB pods before updating the status", "wait", wait)
			c.queue.AddAfter(key, wait)
			return nil
		}
	}
	// Say why no node can host the LB only while the status is empty: with an address
	// published the LB works, whatever the placement of pods still to come.
	var reasons string
	if len(ingress) == 0 {
		pods, err := c.pods.List(labels.Everything())
		if err != nil {
			return fmt.Errorf("listing LB pods from the cache: %w", err)
		}
		p := placeLoadBalancer(svc, nodes, want.Spec.Template.Spec.Tolerations, indexHostPorts(pods, c.keys), c.keys)
		if len(p.eligible) == 0 {
			reasons = p.String()
		}
		logger.V(2).Info("No ready LB pod yet", "placement", p.String())
	}

	_, written, err := c.writeIngress(ctx, svc, old, ingress)
	if err != nil {
		return err
	}
	typ, reason, msg := ingressEvent(old, ingress)
	switch {
	case len(ingress) > 0:
		c.forgetWarning(key)
		if written {
			c.recorder.Event(svc, typ, reason, msg)
		}
	case written || reasons != "":
		if written {
			c.forgetWarning(key) // the status changed: say so even if the reasons did not
		}
		if reasons != "" {
			msg += ": " + reasons
		}
		c.warn(svc, reason, msg)
	default:
		c.forgetWarning(key)
	}
	return nil
}

// refuseReserved stops serving a Service that claims a reserved host port: unlike an invalid
// spec, whose DaemonSet is left as it was, the point is to keep the port free, so a DaemonSet
// it had (the port changed, or the option is new) goes and its addresses are withdrawn. The
// Warning is absorbed like a bad spec's: the Service's next change requeues it.
func (c *Controller) refuseReserved(ctx context.Context, svc *corev1.Service, reserved field.ErrorList) error {
	key := cache.MetaObjectToName(svc)
	msg := (&invalidServiceError{errs: reserved}).Error()
	klog.FromContext(ctx).Info("Service claims a reserved host port", "err", msg)
	if err := c.deleteDaemonSets(ctx, key, svc, ""); err != nil {
		return err
	}
	if _, _, err := c.writeIngress(ctx, svc, c.storedIngress(svc), nil); err != nil {
		return err
	}
	c.warn(svc, ReasonSyncLoadBalancerFailed, msg)
	return nil
}

// ingress computes the status of svc from the caches, and returns the Service's LB
// pods it was computed from.
func (c *Controller) ingress(svc *corev1.Service) ([]corev1.LoadBalancerIngress, []*corev1.Pod, error) {
	pods, err := c.pods.Pods(c.opts.Namespace).List(labels.SelectorFromSet(labels.Set{
		c.keys.SvcName: svc.Name, c.keys.SvcNamespace: svc.Namespace,
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("listing LB pods from the cache: %w", err)
	}
	nodes := make(map[string]*corev1.Node, len(pods))
	for _, pod := range pods {
		if pod.Spec.NodeName == "" {
			continue
		}
		node, err := c.nodes.Get(pod.Spec.NodeName)
		if err == nil {
			nodes[node.Name] = node
		} else if !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("getting Node %s from the cache: %w", pod.Spec.NodeName, err)
		}
	}
	var slices []*discoveryv1.EndpointSlice
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		slices, err = c.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{
			discoveryv1.LabelServiceName: svc.Name,
		}))
		if err != nil {
			return nil, nil, fmt.Errorf("listing EndpointSlices from the cache: %w", err)
		}
	}
	return loadBalancerIngress(svc, pods, nodes, slices, c.opts.IPMode, c.keys), pods, nil
}

// cleanup undoes what serving svc did once it is deleted or no longer ours (type changed):
// DaemonSet, then status, then finalizers, in the order of the upstream service controller
// (ensure, then status, then the cleanup finalizer). A Service of another implementation keeps its status and finalizers: the
// cleanup finalizer is every cloud provider's, and the status is theirs.
func (c *Controller) cleanup(ctx context.Context, svc *corev1.Service) error {
	key := cache.MetaObjectToName(svc)
	c.forgetWarning(key)
	if err := c.deleteDaemonSets(ctx, key, svc, ""); err != nil {
		return err
	}
	if class := svc.Spec.LoadBalancerClass; class != nil && *class != "" && *class != c.opts.LoadBalancerClass {
		return nil
	}
	if slices.Contains(svc.Finalizers, LoadBalancerCleanupFinalizer) {
		var err error
		// The finalizer patch carries the resourceVersion the status patch returns.
		if svc, _, err = c.writeIngress(ctx, svc, c.storedIngress(svc), nil); err != nil {
			return err
		}
	}
	_, err := c.setFinalizers(ctx, svc, false)
	return err
}

// warn emits a Warning on svc unless the last one emitted for it said the same.
func (c *Controller) warn(svc *corev1.Service, reason, message string) {
	key := cache.MetaObjectToName(svc)
	c.mu.Lock()
	same := c.warned[key] == reason+": "+message
	c.warned[key] = reason + ": " + message
	c.mu.Unlock()
	if !same {
		c.recorder.Event(svc, corev1.EventTypeWarning, reason, message)
	}
}

func (c *Controller) forgetWarning(key cache.ObjectName) {
	c.mu.Lock()
	delete(c.warned, key)
	c.mu.Unlock()
}

// setFinalizers adds (serve) or removes (!serve) the cleanup finalizer, and removes K3s's
// legacy finalizer either way (K3s sweeps it at every start; we do it per Service).
// It returns the Service as written, or svc when nothing had to change.
func (c *Controller) setFinalizers(ctx context.Context, svc *corev1.Service, serve bool) (*corev1.Service, error) {
	want := slices.DeleteFunc(slices.Clone(svc.Finalizers), func(f string) bool {
		return f == c.keys.LegacyFinalizer || (!serve && f == LoadBalancerCleanupFinalizer)
	})
	if serve && !slices.Contains(want, LoadBalancerCleanupFinalizer) {
		want = append(want, LoadBalancerCleanupFinalizer)
	}
	if slices.Equal(want, svc.Finalizers) {
		return svc, nil
	}
	// A merge patch replaces the list; the resourceVersion makes it fail rather than drop a
	// finalizer someone else added meanwhile.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": want, "resourceVersion": svc.ResourceVersion,
	}})
	if err != nil {
		return nil, fmt.Errorf("encoding finalizers of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	out, err := c.client.CoreV1().Services(svc.Namespace).Patch(ctx, svc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("setting finalizers of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Set finalizers", "finalizers", want)
	return out, nil
}

// applyDaemonSet applies want with server-side apply when the live DaemonSet differs from it,
// and records AppliedDaemonSet once the write succeeded (Events follow successful writes; K3s emits it even when the
// apply fails).
func (c *Controller) applyDaemonSet(ctx context.Context, svc *corev1.Service, want *appsv1.DaemonSet) error {
	key := cache.ObjectName{Namespace: want.Namespace, Name: want.Name}
	live, err := c.daemonSets.DaemonSets(want.Namespace).Get(want.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting DaemonSet %s/%s from the cache: %w", want.Namespace, want.Name, err)
	}
	cachedVersion := ""
	if err == nil {
		cachedVersion = live.ResourceVersion
	}
	if ours, ok := c.applied.current(key, cachedVersion); ok {
		live = ours
	} else if err != nil {
		live = nil
	}
	if live != nil && daemonSetUpToDate(live, want) {
		return nil
	}
	ac, err := applyConfiguration(want)
	if err != nil {
		return err
	}
	out, err := c.client.AppsV1().DaemonSets(want.Namespace).Apply(ctx, ac,
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("applying DaemonSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	if !daemonSetUpToDate(out, want) {
		if out, err = c.dropForeignPlacement(ctx, want); err != nil {
			return err
		}
	}
	c.applied.remember(key, cachedVersion, out)
	klog.FromContext(ctx).V(2).Info("Applied DaemonSet", "daemonSet", klog.KObj(want))
	c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonAppliedDaemonSet, messageAppliedDaemonSet, want.Namespace, want.Name)
	return nil
}

// dropForeignPlacement sets the node selector and affinity of the DaemonSet's pods to what we
// render. An apply only removes the fields its manager owns; a DaemonSet that K3s created (or
// someone edited) keeps the node selector another manager set, which is how K3s's stale
// allow-list survives restarts (K3s #14625). A merge patch replaces both fields
// whoever set them; null removes them. It returns the DaemonSet as patched.
func (c *Controller) dropForeignPlacement(ctx context.Context, want *appsv1.DaemonSet) (*appsv1.DaemonSet, error) {
	spec := want.Spec.Template.Spec
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"nodeSelector": nullIfEmpty(spec.NodeSelector), "affinity": spec.Affinity,
	}}}})
	if err != nil {
		return nil, fmt.Errorf("encoding placement of DaemonSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	out, err := c.client.AppsV1().DaemonSets(want.Namespace).Patch(ctx, want.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("patching placement of DaemonSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	if !daemonSetUpToDate(out, want) {
		// Some other field is held by another manager; applying again would not help.
		klog.FromContext(ctx).Info("DaemonSet still differs from its render after apply", "daemonSet", klog.KObj(want))
	}
	return out, nil
}

// nullIfEmpty makes an empty map encode as null, which a merge patch reads as "remove".
func nullIfEmpty(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// deleteDaemonSets deletes the DaemonSets labelled with key's Service, except the one named
// keep, and records DeletedDaemonSet on svc when there is one to record it on.
func (c *Controller) deleteDaemonSets(ctx context.Context, key cache.ObjectName, svc *corev1.Service, keep string) error {
	dss, err := c.daemonSets.DaemonSets(c.opts.Namespace).List(labels.SelectorFromSet(labels.Set{
		c.keys.SvcName: key.Name, c.keys.SvcNamespace: key.Namespace,
	}))
	if err != nil {
		return fmt.Errorf("listing DaemonSets from the cache: %w", err)
	}
	var errs []error
	for _, ds := range dss {
		if ds.Name == keep || ds.DeletionTimestamp != nil {
			continue
		}
		err := c.client.AppsV1().DaemonSets(ds.Namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{
			// The UID precondition keeps a stale cache from deleting a newer DaemonSet.
			Preconditions: &metav1.Preconditions{UID: &ds.UID},
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err))
			continue
		}
		klog.FromContext(ctx).V(2).Info("Deleted DaemonSet", "daemonSet", klog.KObj(ds))
		if svc != nil {
			c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonDeletedDaemonSet, messageDeletedDaemonSet, ds.Namespace, ds.Name)
		}
	}
	return errors.Join(errs...)
}

// storedIngress is the Service's ingress as the API server has it: our last write while the
// cache has not caught up with it, else the cache's.
func (c *Controller) storedIngress(svc *corev1.Service) []corev1.LoadBalancerIngress {
	if ours, ok := c.statuses.current(cache.MetaObjectToName(svc), svc.ResourceVersion); ok {
		return ours
	}
	return svc.Status.LoadBalancer.Ingress
}

// writeIngress patches status.loadBalancer.ingress through the status subresource when it
// differs by value from old, what is stored, and reports whether it wrote.
func (c *Controller) writeIngress(ctx context.Context, svc *corev1.Service, old, ingress []corev1.LoadBalancerIngress) (*corev1.Service, bool, error) {
	if ingressEqual(old, ingress) {
		return svc, false, nil
	}
	// A merge patch replaces the list whole; null removes it.
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"loadBalancer": map[string]any{"ingress": ingress}}})
	if err != nil {
		return nil, false, fmt.Errorf("encoding status of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	out, err := c.client.CoreV1().Services(svc.Namespace).Patch(ctx, svc.Name, types.MergePatchType, patch,
		metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, false, fmt.Errorf("patching status of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	c.statuses.remember(cache.MetaObjectToName(svc), svc.ResourceVersion, ingress)
	c.metrics.statusUpdates.Inc()
	klog.FromContext(ctx).V(2).Info("Updated LoadBalancer status", "ingress", ingressAddresses(ingress))
	return out, true, nil
}
