package clustercidr

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/events"
	"github.com/k3snet/k3snet/internal/workloop"
)

// Event reasons. The first two are kube-controller-manager's, so users and alerts
// that know them keep working.
const (
	// ReasonCIDRNotAvailable: no ClusterCIDR that selects the Node has a free block.
	ReasonCIDRNotAvailable = "CIDRNotAvailable"
	// ReasonCIDRAssignmentFailed: the Node patch that sets spec.podCIDRs failed.
	ReasonCIDRAssignmentFailed = "CIDRAssignmentFailed"
	// ReasonCIDROutsideClusterCIDRs: the Node's existing pod CIDR lies in no ClusterCIDR (or
	// cannot be parsed); it is held anyway. Upstream crash-looped instead.
	ReasonCIDROutsideClusterCIDRs = "CIDROutsideClusterCIDRs"
	// ReasonCIDRConflict: the Node's existing pod CIDR overlaps one another Node holds.
	ReasonCIDRConflict = "CIDRConflict"
	// ReasonClusterCIDRInUse: a deleted ClusterCIDR is kept by its finalizer for the Nodes
	// named in the message.
	ReasonClusterCIDRInUse = "ClusterCIDRInUse"
	// ReasonInvalidClusterCIDR: a ClusterCIDR the API accepted is refused by the allocator
	// (for example a spec changed under a name the allocator knows).
	ReasonInvalidClusterCIDR = "InvalidClusterCIDR"

	// FieldManager owns the fields this controller writes (the CRD, spec.podCIDRs, finalizers).
	FieldManager = "k3snet-clustercidr"

	// eventComponent is the source of the Events.
	eventComponent = "clustercidr-controller"
	// maxPatchAttempts bounds the re-read and retry loop after resourceVersion conflicts on one
	// Node before the key goes back to the rate-limited queue.
	maxPatchAttempts = 5
	// maxNodesInEvent caps the node names a ClusterCIDRInUse Event lists.
	maxNodesInEvent = 10
)

// Controller is the pod CIDR allocation controller. Build it with New and run it with Start.
type Controller struct {
	// started makes a second Start an error instead of a second set of workers.
	started atomic.Bool
	// client patches Nodes and records Events.
	client kubernetes.Interface
	// opts are the validated options with defaults filled in.
	opts Options
	// defaultSpec is the default ClusterCIDR built from opts, with MultiClusterCIDR.
	defaultSpec ClusterCIDRSpec
	// rangePrefixes and rangeMasks are the range allocated from without MultiClusterCIDR.
	rangePrefixes []netip.Prefix
	rangeMasks    [numFamilies]int
	// serviceCIDRs are never handed out.
	serviceCIDRs []netip.Prefix

	// nodes and nodesSynced read Nodes from the shared informer.
	nodes       corelisters.NodeLister
	nodesSynced cache.InformerSynced
	// ccs and ccsSynced read ClusterCIDRs from the controller's own dynamic informer; nil
	// without MultiClusterCIDR.
	ccs       cache.GenericLister
	ccsSynced cache.InformerSynced

	// nodeQueue holds Node names to allocate for, occupy or release.
	nodeQueue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// ccQueue holds ClusterCIDR names to add, guard with the finalizer or let go.
	ccQueue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// recorder records Events on Nodes and ClusterCIDRs.
	recorder record.EventRecorder

	// alloc is the allocator state; built from the listers when this instance starts leading,
	// then used by its workers and read by the metrics collector (hence atomic).
	alloc atomic.Pointer[Allocator]
	// metrics are the controller's metrics, registered on opts.MetricsRegistry if set.
	metrics *controllerMetrics

	// gate lets a rebuild of the allocator run alone: workers hold it for reading while they
	// sync a key, rebuildIfWanted holds it for writing.
	gate sync.RWMutex
	// rebuildWanted is set when a conflict showed that another writer gave a Node other CIDRs
	// than ours: this allocator may not know what that writer handed out elsewhere.
	rebuildWanted atomic.Bool

	// mu guards waiting.
	mu sync.Mutex
	// waiting holds the Nodes that got CIDRNotAvailable; they are requeued when capacity
	// appears (freed capacity reprocesses waiters, so none waits for a resync).
	waiting map[string]struct{}
}

// New returns a Controller that talks to the API server through client (and, with
// MultiClusterCIDR, opts.Dynamic).
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	if client == nil {
		return nil, errors.New("clustercidr: nil client")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("clustercidr: invalid options: %w", err)
	}
	var spec ClusterCIDRSpec
	var prefixes []netip.Prefix
	var masks [numFamilies]int
	var err error
	if opts.MultiClusterCIDR {
		spec, err = opts.defaultSpec()
	} else {
		prefixes, masks, err = opts.defaultRange()
	}
	if err != nil {
		return nil, fmt.Errorf("clustercidr: %w", err)
	}
	svc, err := parsePrefixes("ServiceCIDRs", opts.ServiceCIDRs)
	if err != nil {
		return nil, fmt.Errorf("clustercidr: %w", err)
	}
	c := &Controller{
		client:        client,
		opts:          opts,
		defaultSpec:   spec,
		rangePrefixes: prefixes,
		rangeMasks:    masks,
		serviceCIDRs:  svc,
		nodeQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "clustercidr-nodes"}),
		ccQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "clustercidr-clustercidrs"}),
		waiting: map[string]struct{}{},
	}
	if c.metrics, err = newControllerMetrics(c, opts.MetricsRegistry); err != nil {
		return nil, fmt.Errorf("clustercidr: %w", err)
	}
	return c, nil
}

// allocator returns the allocator, nil until this instance starts allocating.
func (c *Controller) allocator() *Allocator { return c.alloc.Load() }

// Start registers the informers the controller needs on factory, starts the factory (which
// is idempotent, so controllers can share one), waits for those caches and returns. Workers
// stop when ctx ends.
//
// With MultiClusterCIDR it first installs the CRD and waits until it is Established, and
// creates default-cluster-cidr if it does not exist. ClusterCIDRs come through a dynamic
// informer factory of the controller's own, started here, since client-go's shared factory
// has no informer for them.
//
// Allocation starts in the background once the allocator is rebuilt from the API, and stops
// when ctx ends. Two allocators must never run at once (a precondition on one Node cannot stop
// two of them from giving one block to two Nodes): run every instance under one Lease with
// package leader, a new Controller per term, as kube-controller-manager runs its allocator.
// Start starts factory with ctx; under leader.RunController the factory outlives the term.
//
// A Controller starts once: a second Start is an error, and a new term as leader needs a new
// Controller from New. Start starts factory with ctx; under leader election, pass a factory
// whose informers outlive the term (leader.ScopedFactory; leader.RunController does both).
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("clustercidr: Start called twice")
	}
	logger := klog.FromContext(ctx).WithName("clustercidr")
	ctx = klog.NewContext(ctx, logger)

	nodeInformer := factory.Core().V1().Nodes()
	c.nodes = nodeInformer.Lister()
	c.nodesSynced = nodeInformer.Informer().HasSynced
	if _, err := nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueNode,
		UpdateFunc: c.handleNodeUpdate,
		DeleteFunc: c.enqueueNode,
	}); err != nil {
		return fmt.Errorf("clustercidr: node event handler: %w", err)
	}
	synced := []cache.InformerSynced{c.nodesSynced}

	if c.opts.MultiClusterCIDR {
		if err := installCRD(ctx, c.opts.Dynamic); err != nil {
			return fmt.Errorf("clustercidr: %w", err)
		}
		created, err := createDefaultClusterCIDR(ctx, c.opts.Dynamic, c.defaultSpec)
		if err != nil {
			return fmt.Errorf("clustercidr: %w", err)
		}
		logger.V(2).Info("Default ClusterCIDR", "name", DefaultClusterCIDRName, "created", created)
		dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(c.opts.Dynamic, 0)
		ccInformer := dynFactory.ForResource(clusterCIDRGVR)
		c.ccs = ccInformer.Lister()
		c.ccsSynced = ccInformer.Informer().HasSynced
		if _, err := ccInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueClusterCIDR,
			UpdateFunc: c.handleClusterCIDRUpdate,
			DeleteFunc: c.enqueueClusterCIDR,
		}); err != nil {
			return fmt.Errorf("clustercidr: ClusterCIDR event handler: %w", err)
		}
		synced = append(synced, c.ccsSynced)
		dynFactory.Start(ctx.Done())
	}

	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		c.nodeQueue.ShutDown()
		c.ccQueue.ShutDown()
		return fmt.Errorf("clustercidr: caches did not sync: %w", context.Cause(ctx))
	}
	c.recorder = c.opts.EventRecorder
	if c.recorder == nil {
		c.recorder = events.NewRecorder(ctx, c.client, corev1.EventSource{Component: eventComponent}, 4)
	}

	go c.lead(ctx)
	return nil
}

// lead rebuilds the allocator from the caches, following upstream's start-up order (every
// ClusterCIDR, including terminating ones, then every Node's CIDRs, then the terminating
// marks, so they keep their nodes), and runs the workers until ctx ends.
func (c *Controller) lead(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer c.nodeQueue.ShutDown()
	defer c.ccQueue.ShutDown()
	logger := klog.FromContext(ctx)

	var alloc *Allocator
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: time.Second, Factor: 1.6, Steps: 11, Cap: time.Minute},
		func(ctx context.Context) (bool, error) {
			var err error
			if alloc, err = c.rebuild(ctx); err != nil {
				logger.Error(err, "Rebuilding the allocator failed; retrying")
				return false, nil
			}
			return true, nil
		})
	if err != nil {
		// Without an allocator that knows every Node nothing is safe to hand out.
		logger.Error(err, "Rebuilding the allocator failed; the controller stops")
		return
	}
	c.alloc.Store(alloc)

	// Every object was queued by the informers' initial adds; queue them again anyway, since
	// a lost Lease holder may have changed them while this instance waited.
	nodes, _ := c.nodes.List(labels.Everything())
	for _, n := range nodes {
		c.nodeQueue.Add(cache.MetaObjectToName(n))
	}
	if c.ccs != nil {
		objs, _ := c.ccs.List(labels.Everything())
		for _, o := range objs {
			if u, ok := o.(*unstructured.Unstructured); ok {
				c.ccQueue.Add(cache.ObjectName{Name: u.GetName()})
			}
		}
	}

	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runNodeWorker, time.Second) })
	}
	if c.ccs != nil {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runClusterCIDRWorker, time.Second) })
	}
	logger.Info("Allocating pod CIDRs", "multiClusterCIDR", c.opts.MultiClusterCIDR, "workers", c.opts.Workers)
	<-ctx.Done()
	c.nodeQueue.ShutDown()
	c.ccQueue.ShutDown()
	wg.Wait()
}

// runNodeWorker processes Node keys until the queue shuts down.
func (c *Controller) runNodeWorker(ctx context.Context) {
	sync := c.gated(c.syncNode)
	for workloop.ProcessNext(ctx, c.nodeQueue, "Syncing Node", sync) {
		c.rebuildIfWanted(ctx)
	}
}

// runClusterCIDRWorker processes ClusterCIDR keys until the queue shuts down.
func (c *Controller) runClusterCIDRWorker(ctx context.Context) {
	sync := c.gated(c.syncClusterCIDR)
	for workloop.ProcessNext(ctx, c.ccQueue, "Syncing ClusterCIDR", sync) {
		c.rebuildIfWanted(ctx)
	}
}
