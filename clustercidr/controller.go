package clustercidr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
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
// MultiClusterCIDR, opts.DynamicClient).
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
	if opts.Identity == "" {
		host, _ := os.Hostname()
		opts.Identity = host + "_" + rand.String(8)
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
// Allocation starts in the background once the allocator is rebuilt from the API, and,
// with LeaseName, only once this instance holds the Lease. When the Lease is lost the
// controller stops for good, as kube-controller-manager exits: an allocator that was not
// leading may hold stale state, and a fresh instance rebuilds it from the API.
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
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
		if err := installCRD(ctx, c.opts.DynamicClient); err != nil {
			return fmt.Errorf("clustercidr: %w", err)
		}
		created, err := createDefaultClusterCIDR(ctx, c.opts.DynamicClient, c.defaultSpec)
		if err != nil {
			return fmt.Errorf("clustercidr: %w", err)
		}
		logger.V(2).Info("Default ClusterCIDR", "name", DefaultClusterCIDRName, "created", created)
		dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(c.opts.DynamicClient, 0)
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
	c.recorder = events.NewRecorder(ctx, c.client, corev1.EventSource{Component: eventComponent}, 4)

	if c.opts.LeaseName == "" {
		go c.lead(ctx)
		return nil
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: c.opts.LeaseName, Namespace: c.opts.LeaseNamespace},
			Client:     c.client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: c.opts.Identity},
		},
		LeaseDuration: c.opts.LeaseDuration,
		RenewDeadline: c.opts.RenewDeadline,
		RetryPeriod:   c.opts.RetryPeriod,
		// Stopping cleanly hands over at once instead of after LeaseDuration (restart case).
		ReleaseOnCancel: true,
		Name:            c.opts.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: c.lead,
			OnStoppedLeading: func() {
				logger.Info("Stopped leading; the controller stops", "lease", c.opts.LeaseName, "identity", c.opts.Identity)
				c.nodeQueue.ShutDown()
				c.ccQueue.ShutDown()
			},
		},
	})
	if err != nil {
		return fmt.Errorf("clustercidr: leader election: %w", err)
	}
	go elector.Run(ctx)
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

// rebuild returns an allocator holding what the API says: the ClusterCIDRs from the cache (or
// the default range alone without MultiClusterCIDR) and every Node's pod CIDRs.
func (c *Controller) rebuild(ctx context.Context) (*Allocator, error) {
	logger := klog.FromContext(ctx)
	alloc, err := NewAllocator(c.serviceCIDRs)
	if err != nil {
		return nil, err
	}
	var terminating []string
	if c.ccs == nil {
		// Without --multi-cluster-cidr the flags are the only range, as in K3s's range
		// allocator (each family its own node mask); no object is read or written.
		if err := alloc.AddRange(DefaultClusterCIDRName, c.rangePrefixes, c.rangeMasks[ipv4], c.rangeMasks[ipv6]); err != nil {
			return nil, err
		}
	} else {
		objs, err := c.ccs.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("listing ClusterCIDRs: %w", err)
		}
		for _, o := range objs {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			spec, err := specFromObject(u)
			if err == nil {
				err = alloc.AddClusterCIDR(u.GetName(), spec)
			}
			if err != nil {
				// The ClusterCIDR worker reports it as an Event on the object.
				logger.Error(err, "Ignoring ClusterCIDR", "clusterCIDR", u.GetName())
				continue
			}
			if u.GetDeletionTimestamp() != nil {
				terminating = append(terminating, u.GetName())
			}
		}
	}
	// The Nodes come from a live (quorum) list, not the cache: after a Lease handover the
	// cache may not have seen the previous leader's last patches yet, and a block missing
	// here would be handed out twice. Syncs of Nodes the cache still shows without CIDRs
	// then get the held block back (Allocate) and end in a conflict and a re-read.
	nodes, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Nodes: %w", err)
	}
	in := make([]Node, 0, len(nodes.Items))
	for i := range nodes.Items {
		n := &nodes.Items[i]
		nn, err := nodeFromAPI(n)
		if err != nil {
			logger.Error(err, "Ignoring the pod CIDRs of a Node", "node", klog.KObj(n))
			continue
		}
		in = append(in, nn)
	}
	if err := alloc.Restore(in); err != nil {
		// Each failing Node gets its Warning Event when its key is synced.
		logger.Info("Some Nodes' pod CIDRs could not be placed", "err", err)
	}
	for _, name := range terminating {
		alloc.DeleteClusterCIDR(name)
	}
	return alloc, nil
}

// enqueueNode queues the node's name; it is the add and delete handler.
func (c *Controller) enqueueNode(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		c.nodeQueue.Add(cache.MetaObjectToName(n))
	}
}

// handleNodeUpdate queues a node when its pod CIDRs or labels changed: the pod CIDRs are what
// the allocator must hold, and labels decide which ClusterCIDR a waiting node may use. Status
// heartbeats and resyncs are dropped.
func (c *Controller) handleNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	cur, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if old.Spec.PodCIDR == cur.Spec.PodCIDR && slices.Equal(old.Spec.PodCIDRs, cur.Spec.PodCIDRs) &&
		labels.Equals(old.Labels, cur.Labels) {
		return
	}
	c.nodeQueue.Add(cache.MetaObjectToName(cur))
}

// enqueueClusterCIDR queues the ClusterCIDR's name; it is the add and delete handler.
func (c *Controller) enqueueClusterCIDR(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		c.ccQueue.Add(cache.ObjectName{Name: u.GetName()})
	}
}

// handleClusterCIDRUpdate drops resyncs and queues real changes (deletion, finalizers).
func (c *Controller) handleClusterCIDRUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*unstructured.Unstructured)
	cur, ok2 := newObj.(*unstructured.Unstructured)
	if !ok1 || !ok2 || old.GetResourceVersion() == cur.GetResourceVersion() {
		return
	}
	c.ccQueue.Add(cache.ObjectName{Name: cur.GetName()})
}

// requeueWaiting queues every Node that is waiting for capacity.
func (c *Controller) requeueWaiting() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.waiting {
		c.nodeQueue.Add(cache.ObjectName{Name: name})
	}
}

// setWaiting records whether the node waits for capacity and reports whether it did before.
func (c *Controller) setWaiting(name string, wait bool) (was bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, was = c.waiting[name]
	if wait {
		c.waiting[name] = struct{}{}
	} else {
		delete(c.waiting, name)
	}
	return was
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

// gated runs sync under the read side of the gate, so no rebuild happens during it.
func (c *Controller) gated(sync func(context.Context, string) error) workloop.Sync[cache.ObjectName] {
	return func(ctx context.Context, key cache.ObjectName) error {
		c.gate.RLock()
		defer c.gate.RUnlock()
		return sync(ctx, key.Name)
	}
}

// rebuildIfWanted rebuilds the allocator from the API when a sync found another writer
// (rebuildWanted), once every sync in flight has finished and before any other starts: the
// state a new leader starts from. Then every Node is queued again, so conflicts the rebuild
// found get their Events. A failed rebuild keeps the old allocator and is tried again after
// the next key.
func (c *Controller) rebuildIfWanted(ctx context.Context) {
	if !c.rebuildWanted.Load() {
		return
	}
	c.gate.Lock()
	defer c.gate.Unlock()
	if !c.rebuildWanted.CompareAndSwap(true, false) {
		return // another worker did it meanwhile
	}
	logger := klog.FromContext(ctx)
	alloc, err := c.rebuild(ctx)
	if err != nil {
		c.rebuildWanted.Store(true)
		logger.Error(err, "Rebuilding the allocator after another writer was seen failed; retrying")
		return
	}
	c.alloc.Store(alloc)
	logger.Info("Another writer set pod CIDRs; the allocator was rebuilt from the API")
	nodes, _ := c.nodes.List(labels.Everything())
	for _, n := range nodes {
		c.nodeQueue.Add(cache.MetaObjectToName(n))
	}
}

// syncNode makes the allocator and the Node agree: a gone Node's CIDRs are released, a Node
// with CIDRs has them occupied, a Node without gets a block with one patch.
func (c *Controller) syncNode(ctx context.Context, name string) error {
	logger := klog.FromContext(ctx).WithValues("node", name)
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.setWaiting(name, false)
		c.release(ctx, name)
		return nil
	}
	if err != nil {
		return err
	}
	n, err := nodeFromAPI(node)
	if err != nil {
		c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDROutsideClusterCIDRs, err.Error())
		return nil
	}
	if len(n.PodCIDRs) > 0 {
		c.setWaiting(name, false)
		c.occupy(ctx, node, n)
		return nil
	}
	return c.assign(ctx, logger, node, n)
}

// release frees a deleted Node's CIDRs, then lets waiting Nodes and a terminating
// ClusterCIDR see the freed capacity.
func (c *Controller) release(ctx context.Context, name string) {
	got, ok := c.allocator().Release(name)
	if !ok {
		return
	}
	klog.FromContext(ctx).V(2).Info("Released pod CIDRs", "node", name, "podCIDRs", got.PodCIDRs, "clusterCIDRs", got.ClusterCIDRs)
	if len(got.ClusterCIDRs) == 0 {
		c.metrics.releases.WithLabelValues("").Inc()
	}
	for _, cc := range got.ClusterCIDRs {
		c.metrics.releases.WithLabelValues(cc).Inc()
		if c.ccs != nil {
			c.ccQueue.Add(cache.ObjectName{Name: cc})
		}
	}
	c.requeueWaiting()
}

// occupy records a Node's existing CIDRs. They never change (a node that already has a CIDR
// cannot get a new one), so problems are reported, not retried.
func (c *Controller) occupy(ctx context.Context, node *corev1.Node, n Node) {
	_, err := c.allocator().Occupy(n)
	switch {
	case err == nil:
	case errors.Is(err, ErrCIDROutsideClusterCIDRs):
		// Held anyway, so nothing else gets the block; a ClusterCIDR added later adopts it.
		c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDROutsideClusterCIDRs, err.Error())
	case errors.Is(err, ErrAlreadyAllocated):
		c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDRConflict, err.Error())
	default:
		klog.FromContext(ctx).Error(err, "Occupying pod CIDRs failed", "node", klog.KObj(node))
	}
}

// assign gives a Node without CIDRs a block and writes it with one patch conditional on the
// Node's resourceVersion. On a conflict the Node is re-read from the API: if someone else set
// its CIDRs those are what the allocator holds from then on; otherwise the same block is
// retried on the fresh version.
func (c *Controller) assign(ctx context.Context, logger klog.Logger, node *corev1.Node, n Node) error {
	for range maxPatchAttempts {
		got, err := c.allocator().Allocate(n)
		if errors.Is(err, ErrNoCIDRAvailable) {
			if !c.setWaiting(n.Name, true) {
				c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDRNotAvailable, err.Error())
			}
			logger.V(2).Info("No pod CIDR available; waiting for capacity", "err", err)
			return nil
		}
		if err != nil {
			c.recorder.Event(node, corev1.EventTypeWarning, ReasonCIDRAssignmentFailed, err.Error())
			return nil
		}
		c.setWaiting(n.Name, false)
		err = c.patchPodCIDRs(ctx, node.Name, node.ResourceVersion, got.PodCIDRs)
		if err == nil {
			logger.V(2).Info("Assigned pod CIDRs", "podCIDRs", got.PodCIDRs, "clusterCIDRs", got.ClusterCIDRs)
			for _, cc := range got.ClusterCIDRs { // one: an allocation comes from one ClusterCIDR
				c.metrics.allocations.WithLabelValues(cc).Inc()
			}
			return nil
		}
		if ctx.Err() != nil {
			// Stopping: this allocator is discarded, and whoever allocates next rebuilds from
			// the API whether or not the patch landed.
			return nil
		}
		if !apierrors.IsConflict(err) {
			if apierrors.IsNotFound(err) {
				c.release(ctx, n.Name)
				return nil
			}
			// A timeout may have applied the patch: keep the reservation, so the retry writes
			// the same block and nothing else can get it meanwhile.
			if !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
				c.allocator().Release(n.Name)
			}
			c.recorder.Eventf(node, corev1.EventTypeWarning, ReasonCIDRAssignmentFailed, "Setting pod CIDRs %v: %v", got.PodCIDRs, err)
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		fresh, err := c.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			c.release(ctx, n.Name)
			return nil
		}
		if err != nil {
			return fmt.Errorf("node %s: re-reading after a conflict: %w", n.Name, err)
		}
		fn, err := nodeFromAPI(fresh)
		if err != nil {
			c.allocator().Release(n.Name)
			c.recorder.Event(fresh, corev1.EventTypeWarning, ReasonCIDROutsideClusterCIDRs, err.Error())
			return nil
		}
		if len(fn.PodCIDRs) > 0 {
			logger.V(2).Info("Node got pod CIDRs from another writer", "podCIDRs", fn.PodCIDRs)
			if !slices.Equal(fn.PodCIDRs, got.PodCIDRs) {
				c.allocator().Release(n.Name)
				// Another allocator is (or was) at work: what else it handed out is in
				// the API, not necessarily in our cache yet.
				c.rebuildWanted.Store(true)
			}
			c.occupy(ctx, fresh, fn)
			return nil
		}
		if !labels.Equals(fn.Labels, n.Labels) {
			// The labels decide the ClusterCIDR: choose again for the new ones.
			c.allocator().Release(n.Name)
		}
		node, n = fresh, fn
	}
	return fmt.Errorf("node %s: %d resourceVersion conflicts in a row", n.Name, maxPatchAttempts)
}

// patchPodCIDRs sets spec.podCIDR and spec.podCIDRs in one JSON merge patch. The
// resourceVersion in the patch makes it conditional: the API server answers Conflict if the
// Node changed since it was read.
func (c *Controller) patchPodCIDRs(ctx context.Context, name, resourceVersion string, cidrs []netip.Prefix) error {
	strs := make([]string, len(cidrs))
	for i, p := range cidrs {
		strs[i] = p.String()
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": resourceVersion},
		"spec":     map[string]any{"podCIDR": strs[0], "podCIDRs": strs},
	})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	return err
}

// syncClusterCIDR makes the allocator and the finalizer follow a ClusterCIDR object: a live
// one is added and guarded by Finalizer; a deleted one hands out nothing more and keeps the
// finalizer while Nodes hold blocks from it (deletion protection, as upstream's allocator).
func (c *Controller) syncClusterCIDR(ctx context.Context, name string) error {
	logger := klog.FromContext(ctx).WithValues("clusterCIDR", name)
	obj, err := c.ccs.Get(name)
	if apierrors.IsNotFound(err) {
		// Gone without our finalizer (removed by hand): its nodes keep their blocks.
		if nodes := c.allocator().DeleteClusterCIDR(name); len(nodes) > 0 {
			logger.Info("ClusterCIDR deleted while Nodes use it", "nodes", nodes)
		}
		return nil
	}
	if err != nil {
		return err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fmt.Errorf("ClusterCIDR %s: unexpected type %T", name, obj)
	}
	if u.GetDeletionTimestamp() != nil {
		if !slices.Contains(u.GetFinalizers(), Finalizer) {
			c.allocator().DeleteClusterCIDR(name)
			return nil
		}
		if nodes := c.allocator().DeleteClusterCIDR(name); len(nodes) > 0 {
			shown := nodes[:min(len(nodes), maxNodesInEvent)]
			more := ""
			if len(nodes) > len(shown) {
				more = fmt.Sprintf(" and %d more", len(nodes)-len(shown))
			}
			c.recorder.Eventf(u, corev1.EventTypeWarning, ReasonClusterCIDRInUse,
				"ClusterCIDR %s is terminating; it stays until no Node uses it: %s%s", name, strings.Join(shown, ", "), more)
			return nil
		}
		logger.V(2).Info("Removing the finalizer of a deleted ClusterCIDR")
		return setFinalizer(ctx, c.opts.DynamicClient, u, false)
	}
	spec, err := specFromObject(u)
	if err == nil {
		err = c.allocator().AddClusterCIDR(name, spec)
	}
	if err != nil {
		c.recorder.Event(u, corev1.EventTypeWarning, ReasonInvalidClusterCIDR, err.Error())
		return nil
	}
	// New capacity: nodes that waited may fit now.
	c.requeueWaiting()
	return setFinalizer(ctx, c.opts.DynamicClient, u, true)
}
