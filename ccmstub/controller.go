package ccmstub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
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

// Event reasons and messages. Synced is the reason the upstream cloud-node controller that K3s
// runs gives a node it has initialized, so `kubectl get events --field-selector reason=Synced`
// keeps working after a move from K3s; the others are ours, for decisions K3s only logs.
const (
	// ReasonSynced (Normal) follows the removal of the uninitialized taint.
	ReasonSynced = "Synced"
	// ReasonAddressesUpdated (Normal) follows a change of an initialized node's status.addresses.
	ReasonAddressesUpdated = "AddressesUpdated"
	// ReasonInvalidAddress (Warning) names an annotation or legacy label item that is not an IP
	// address (or DNS name); the node's valid addresses are still used.
	ReasonInvalidAddress = "InvalidAddress"
	// ReasonProvidedNodeIPNotFound (Warning) says why a node keeps the uninitialized taint: the
	// kubelet's node IP is not among the addresses the agent annotated.
	ReasonProvidedNodeIPNotFound = "ProvidedNodeIPNotFound"

	messageSynced           = "Node initialized with addresses %s and providerID %s; removed taint %s"
	messageAddressesUpdated = "Node addresses set from annotations: %s"
	messageInvalidAddress   = "Ignoring %s; the node's other addresses are used"

	// FieldManager names the stub in the managedFields of the Nodes it writes.
	FieldManager = "k3snet-ccmstub"
	// eventComponent is the source of the stub's Events: in K3s they come from the upstream
	// cloud-node controller.
	eventComponent = "cloud-node-controller"
	// queueName names the work queue in workqueue metrics and logs.
	queueName = "ccmstub-node"
)

// Controller is the cloud-controller stub: for every Node it sets status.addresses,
// spec.providerID and the instance-type labels from what the node's agent annotated, and
// removes the uninitialized taint once the addresses exist; it also hosts the load-balancer
// controller. Build it with New and run it with Start.
type Controller struct {
	// client writes Nodes and Events.
	client kubernetes.Interface
	// opts are the validated options with defaults filled in.
	opts Options
	// keys are the annotation keys and providerID scheme built from opts.Program.
	keys Keys

	// nodes reads Nodes from the shared informer's cache; nodesSynced reports whether this
	// controller's handler has seen the initial list. Both are set by Start.
	nodes       corelisters.NodeLister
	nodesSynced cache.InformerSynced

	// queue holds the names of Nodes to sync; a name is in it at most once.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// recorder sends Events on Nodes; Start builds it from a broadcaster unless a test set it.
	recorder record.EventRecorder
	// reported remembers the warnings sent per node, so each is sent once per appearance.
	reported *reportedWarnings
	// started makes a second Start an error instead of a second set of workers.
	started atomic.Bool
	// metrics are the stub's metrics, registered on opts.MetricsRegistry if set.
	metrics *controllerMetrics
}

// New returns a Controller that talks to the API server through client. It checks opts and
// fills in K3s's defaults; nothing runs until Start.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	if client == nil {
		return nil, errors.New("ccmstub: nil client")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("ccmstub: invalid options: %w", err)
	}
	m, err := newControllerMetrics(opts.MetricsRegistry)
	if err != nil {
		return nil, fmt.Errorf("ccmstub: %w", err)
	}
	return &Controller{
		client: client,
		opts:   opts,
		keys:   NewKeys(opts.Program),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: queueName},
		),
		reported: newReportedWarnings(),
		metrics:  m,
	}, nil
}

// Start registers the informers the controller needs on factory, starts the factory (which
// is idempotent, so controllers can share one), waits for those caches, launches the workers
// and returns; workers stop when ctx ends.
//
// Like K3s's cloud controller, the stub runs when either part is on: the node part
// unless Options.DisableNodes, and Options.LoadBalancer (started with the same ctx and factory)
// unless Options.DisableLoadBalancer. With both off, Start returns at once and touches neither
// the factory nor the API server.
//
// A Controller starts once: a second Start is an error, and a new term as leader needs a new
// Controller from New. Start starts factory with ctx; under leader election, pass a factory
// whose informers outlive the term (leader.ScopedFactory; leader.RunController does both).
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("ccmstub: Start called twice")
	}
	// The load balancer gets the caller's ctx and names its own logger.
	lbCtx := ctx
	logger := klog.FromContext(ctx).WithName("ccmstub")
	ctx = klog.NewContext(ctx, logger)
	if !c.opts.nodesOn() && !c.opts.loadBalancerOn() {
		logger.Info("Node handling and load balancer are both disabled; the cloud-controller stub does not run")
		return nil
	}

	if c.opts.nodesOn() {
		// Register before the load balancer starts the factory, so the node informer starts
		// with it rather than in a second factory.Start.
		nodes := factory.Core().V1().Nodes()
		reg, err := nodes.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueNode,
			UpdateFunc: c.handleNodeUpdate,
			DeleteFunc: c.enqueueNode,
		}, cache.HandlerOptions{Logger: &logger})
		if err != nil {
			return fmt.Errorf("ccmstub: adding the node event handler: %w", err)
		}
		c.nodes = nodes.Lister()
		c.metrics.nodes.Store(&c.nodes)
		c.nodesSynced = reg.HasSynced
	}

	if c.opts.loadBalancerOn() {
		if err := c.opts.LoadBalancer.Start(lbCtx, factory); err != nil {
			return fmt.Errorf("ccmstub: starting the load balancer: %w", err)
		}
		logger.Info("Started the load balancer")
	}
	if !c.opts.nodesOn() {
		logger.Info("Node handling is disabled; nodes keep the uninitialized taint until an external cloud controller removes it")
		return nil
	}

	factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.nodesSynced) {
		return fmt.Errorf("ccmstub: node cache did not sync: %w", context.Cause(ctx))
	}
	if c.recorder == nil {
		c.recorder = c.opts.EventRecorder
	}
	if c.recorder == nil {
		c.recorder = events.NewRecorder(ctx, c.client, corev1.EventSource{Component: eventComponent}, 4)
	}
	go c.run(ctx)
	logger.Info("Started node handling", "program", c.opts.Program, "workers", c.opts.Workers)
	return nil
}

// enqueueNode queues the node's name; it is the add and delete handler.
func (c *Controller) enqueueNode(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	c.queue.Add(cache.MetaObjectToName(node))
}

// handleNodeUpdate queues a node when something the stub reads or writes changed. Periodic
// resyncs (same resourceVersion) and status heartbeats that only move conditions are dropped.
func (c *Controller) handleNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	cur, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if maps.Equal(old.Annotations, cur.Annotations) &&
		maps.Equal(old.Labels, cur.Labels) &&
		old.Spec.ProviderID == cur.Spec.ProviderID &&
		equality.Semantic.DeepEqual(old.Spec.Taints, cur.Spec.Taints) &&
		slices.Equal(old.Status.Addresses, cur.Status.Addresses) {
		return
	}
	c.queue.Add(cache.MetaObjectToName(cur))
}

// run runs the workers until ctx ends; shutting the queue down then makes them return.
func (c *Controller) run(ctx context.Context) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	workloop.Run(ctx, c.opts.Workers, c.queue, "Syncing Node", c.observedSync)
	<-ctx.Done()
	klog.FromContext(ctx).Info("Stopping node handling")
}

// observedSync is syncNode, counted in the sync metrics.
func (c *Controller) observedSync(ctx context.Context, key cache.ObjectName) error {
	err := c.syncNode(ctx, key)
	c.metrics.observeSync(err)
	return err
}

// syncNode brings one Node to the state newNode computes from its annotations: addresses first,
// then providerID, labels and taint, so that the taint never goes before the addresses are
// there (K3s PR #4218). Events follow the writes.
func (c *Controller) syncNode(ctx context.Context, key cache.ObjectName) error {
	logger := klog.FromContext(ctx).WithValues("node", key.Name)
	ctx = klog.NewContext(ctx, logger)
	node, err := c.nodes.Get(key.Name)
	if apierrors.IsNotFound(err) {
		c.reported.forget(key.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading node %s from the cache: %w", key.Name, err)
	}
	wasTainted := hasUninitializedTaint(node)

	meta := NodeMetadata(node, c.keys)
	desired, blockers := newNode(node, meta, c.keys)
	addressesChanged := !slices.Equal(node.Status.Addresses, desired.Status.Addresses)
	if addressesChanged {
		updated, err := c.updateAddresses(ctx, desired)
		if err != nil {
			return err
		}
		// The spec patch is conditional on the resourceVersion, which the status write just
		// moved: compute it again from the node the API server returned.
		node = updated
		meta = NodeMetadata(node, c.keys)
		desired, blockers = newNode(node, meta, c.keys)
	}
	if nodeSpecChanged(node, desired) {
		if err := c.patchNode(ctx, node, desired); err != nil {
			return err
		}
	}

	initialized := wasTainted && !hasUninitializedTaint(desired)
	switch {
	case initialized:
		c.metrics.initialized.Inc()
		logger.Info("Node initialized", "addresses", desired.Status.Addresses, "providerID", desired.Spec.ProviderID)
		c.recorder.Eventf(desired, corev1.EventTypeNormal, ReasonSynced, messageSynced,
			formatAddresses(desired.Status.Addresses), desired.Spec.ProviderID, UninitializedTaint)
	case addressesChanged && !hasUninitializedTaint(desired):
		logger.V(2).Info("Node addresses updated", "addresses", desired.Status.Addresses)
		c.recorder.Eventf(desired, corev1.EventTypeNormal, ReasonAddressesUpdated, messageAddressesUpdated,
			formatAddresses(desired.Status.Addresses))
	}

	var warnings []warning
	for _, v := range meta.Invalid {
		warnings = append(warnings, warning{reason: ReasonInvalidAddress, message: fmt.Sprintf(messageInvalidAddress, v)})
	}
	for _, b := range blockers {
		if b.reason == "" {
			logger.V(2).Info("Node keeps the uninitialized taint", "why", b.message)
			continue
		}
		warnings = append(warnings, warning(b))
	}
	for _, w := range c.reported.update(node.Name, warnings) {
		logger.Info("Problem with node", "reason", w.reason, "message", w.message)
		c.recorder.Event(desired, corev1.EventTypeWarning, w.reason, w.message)
	}
	return nil
}

// nodeSpecChanged reports whether patchNode has anything to write.
func nodeSpecChanged(node, desired *corev1.Node) bool {
	return !maps.Equal(node.Labels, desired.Labels) ||
		node.Spec.ProviderID != desired.Spec.ProviderID ||
		!equality.Semantic.DeepEqual(node.Spec.Taints, desired.Spec.Taints)
}

// updateAddresses writes desired's status.addresses through the status subresource. A JSON merge
// patch replaces the whole list: a strategic merge keys the list on the address type, which
// cannot hold two InternalIPs of a dual-stack node.
func (c *Controller) updateAddresses(ctx context.Context, desired *corev1.Node) (*corev1.Node, error) {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"addresses": desired.Status.Addresses}})
	if err != nil {
		return nil, fmt.Errorf("encoding the addresses of node %s: %w", desired.Name, err)
	}
	n, err := c.client.CoreV1().Nodes().Patch(ctx, desired.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager}, "status")
	if err != nil {
		return nil, fmt.Errorf("writing the addresses of node %s: %w", desired.Name, err)
	}
	klog.FromContext(ctx).V(4).Info("Wrote node addresses", "addresses", desired.Status.Addresses)
	return n, nil
}

// patchNode writes the labels the stub adds, spec.providerID and spec.taints. The patch carries
// node's resourceVersion, so it fails with a conflict instead of dropping a taint that another
// controller added since the cache saw the node: a merge patch replaces the taint list whole.
func (c *Controller) patchNode(ctx context.Context, node, desired *corev1.Node) error {
	metadata := map[string]any{"resourceVersion": node.ResourceVersion}
	labels := map[string]any{}
	for k, v := range desired.Labels {
		if cur, ok := node.Labels[k]; !ok || cur != v {
			labels[k] = v
		}
	}
	if len(labels) > 0 {
		metadata["labels"] = labels
	}
	spec := map[string]any{}
	if desired.Spec.ProviderID != node.Spec.ProviderID {
		spec["providerID"] = desired.Spec.ProviderID
	}
	if !equality.Semantic.DeepEqual(node.Spec.Taints, desired.Spec.Taints) {
		spec["taints"] = desired.Spec.Taints
	}
	body := map[string]any{"metadata": metadata}
	if len(spec) > 0 {
		body["spec"] = spec
	}
	patch, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding the patch of node %s: %w", node.Name, err)
	}
	if _, err := c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("patching node %s: %w", node.Name, err)
	}
	klog.FromContext(ctx).V(4).Info("Patched node", "labels", labels, "spec", spec)
	return nil
}
