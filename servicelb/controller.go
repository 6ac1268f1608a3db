package servicelb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/events"
	"github.com/k3snet/k3snet/internal/workloop"
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

// Controller is the ServiceLB controller. Build it with New and run it with Start.
type Controller struct {
	// started makes a second Start an error instead of a second set of workers.
	started atomic.Bool
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
	// podIndex and daemonSetIndex are the same caches, indexed by Service (serviceIndex).
	podIndex, daemonSetIndex cache.Indexer

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
//
// A Controller starts once: a second Start is an error, and a new term as leader needs a new
// Controller from New. Start starts factory with ctx; under leader election, pass a factory
// whose informers outlive the term (leader.ScopedFactory; leader.RunController does both).
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("servicelb: Start called twice")
	}
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

	var errs []error
	if err := c.useLBCaches(podInformer.Informer(), dsInformer.Informer()); err != nil {
		errs = append(errs, err)
	}
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
		workloop.Run(ctx, c.opts.Workers, c.queue, "Syncing LoadBalancer Service", c.observedSync)
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

// observedSync is sync, counted in servicelb_syncs_total.
func (c *Controller) observedSync(ctx context.Context, key cache.ObjectName) error {
	err := c.sync(ctx, key)
	result := "success"
	if err != nil {
		result = "error"
	}
	c.metrics.syncs.WithLabelValues(result).Inc()
	return err
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
	in := statusInput{old: c.storedIngress(svc), ingress: ingress, lbPods: lbPods, now: time.Now()}
	if ds, err := c.daemonSets.DaemonSets(want.Namespace).Get(want.Name); err == nil {
		in.daemonSet = ds
	}
	if len(ingress) == 0 {
		// Only the pods holding one of the Service's ports can keep it off a node.
		pods, err := c.podsHoldingPorts(svc)
		if err != nil {
			return err
		}
		p := placeLoadBalancer(svc, nodes, want.Spec.Template.Spec.Tolerations, indexHostPorts(pods, c.keys), c.keys)
		if len(p.eligible) == 0 {
			in.unplaceable = p.String()
		}
		logger.V(2).Info("No ready LB pod yet", "placement", p.String())
	}
	d := settleStatus(in)
	if d.wait > 0 {
		logger.V(4).Info("Waiting for more LB pods before updating the status", "wait", d.wait)
		c.queue.AddAfter(key, d.wait)
		return nil
	}
	if d.write {
		if _, _, err := c.writeIngress(ctx, svc, in.old, ingress); err != nil {
			return err
		}
	}
	if d.forgetWarning {
		c.forgetWarning(key)
	}
	if e := d.event; e != nil {
		c.recorder.Event(svc, e.eventType, e.reason, e.message)
	}
	if w := d.warning; w != nil {
		c.warn(svc, w.reason, w.message)
	}
	return nil
}
