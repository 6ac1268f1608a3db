package netpol

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/events"
)

// ComponentName is the source of the controller's Events and the name in its logs.
const ComponentName = "netpol-controller"

// Event reasons and message formats, on the NetworkPolicy a user looks at.
const (
	// ReasonInvalidPolicy: part of a NetworkPolicy would be rejected by the API server (for
	// example a policy stored before validation existed, or written to the datastore directly)
	// and is left out; the rest of the policy is still enforced and still isolates its
	// targets, so the node fails closed.
	ReasonInvalidPolicy = "InvalidNetworkPolicy"
	// MessageInvalidPolicy takes the problems, joined with "; ".
	MessageInvalidPolicy = "Part of this NetworkPolicy is invalid and not enforced on node %s (the rest is): %s"
	// ReasonPolicyTooLarge: a NetworkPolicy's ipBlocks need more ipset entries than one policy
	// may use, so none of its rules are enforced; it still isolates the pods it selects, which
	// get only what other policies allow (fail closed).
	ReasonPolicyTooLarge = "NetworkPolicyTooLarge"
	// MessagePolicyTooLarge takes the problems, joined with "; ".
	MessagePolicyTooLarge = "This NetworkPolicy is refused on node %s; the pods it selects stay isolated: %s"
)

// dataplane is what the controller needs of the kernel side; Dataplane is it, tests replace
// it (it is the one place that talks to the kernel).
type dataplane interface {
	// Preflight checks that the tools the families need are usable.
	Preflight(ctx context.Context, families []corev1.IPFamily) error
	Apply(ctx context.Context, st State) error
	// ForgetApplied makes the next Apply read the kernel back in full (drift repair).
	ForgetApplied()
}

var _ dataplane = (*Dataplane)(nil)

// Controller enforces NetworkPolicies on one node: every pod, namespace and policy event, and
// every change of its Node's pod CIDRs, asks for one whole-state sync, a compile from the
// listers then Dataplane.Apply, run by a single coalescing runner. The compile is
// incremental (compileCache): it recomputes only the sets and chains the events since the
// last sync touched, and gives what Compile would. Build it with New and run it with Start.
//
// Shutdown decision: when Start's ctx ends, the runner stops and the rules stay as last
// applied, as kube-router's do. The node keeps enforcing the last state it knew (fails
// closed) through a restart or upgrade of the controller, and the next Start replaces the
// rules in place, without a window in which they are gone. Removing them is a separate,
// explicit act: Cleanup, what --disable-network-policy should do.
type Controller struct {
	// started makes a second Start an error instead of a second set of workers.
	started atomic.Bool
	// client writes Events (through the default recorder).
	client kubernetes.Interface
	// opts are the validated Options with defaults applied.
	opts Options
	// dataplane programs the kernel.
	dataplane dataplane
	// recorder records Events on NetworkPolicies; set by Start unless Options gave one.
	recorder record.EventRecorder
	// metrics are the controller's metrics, registered on opts.MetricsRegistry if set.
	metrics *controllerMetrics
	// runner runs sync; handlers signal it.
	runner *syncRunner

	// The listers Compile reads; Start sets them and waits for their caches.
	podLister    corelisters.PodLister
	nsLister     corelisters.NamespaceLister
	policyLister networkinglisters.NetworkPolicyLister
	nodeLister   corelisters.NodeLister

	// The fields below belong to the runner's goroutine: sync is never run concurrently.

	// compiles keeps what the last compile computed, so a sync recomputes only what its
	// events changed; its result equals Compile's.
	compiles *compileCache
	// applied is the state the last successful Apply programmed; nil before the first one
	// and after a failed one, so the next sync applies whatever it computes.
	applied *State
	// reported maps each NetworkPolicy with problems to what its last Event said, so a
	// problem is reported once per change of the policy, not every sync.
	reported map[cache.ObjectName]string
	// lastApply is when applied was programmed. Once MaxSyncInterval has passed, even an
	// unchanged state is applied again, from a full read of the kernel, which repairs what
	// someone else changed.
	lastApply time.Time
}

// New returns a Controller that talks to the API server through client and programs the
// host's iptables and ipsets.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	return newController(client, opts, NewDataplane(nil))
}

// newController is New with the dataplane injected, for tests that run it in a network
// namespace or against a fake.
func newController(client kubernetes.Interface, opts Options, dp dataplane) (*Controller, error) {
	if client == nil {
		return nil, errors.New("netpol: nil client")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("netpol: invalid options: %w", err)
	}
	m, err := newControllerMetrics(opts.MetricsRegistry)
	if err != nil {
		return nil, fmt.Errorf("netpol: %w", err)
	}
	c := &Controller{
		client:    client,
		opts:      opts,
		dataplane: dp,
		recorder:  opts.EventRecorder,
		metrics:   m,
		reported:  map[cache.ObjectName]string{},
		compiles:  newCompileCache(),
	}
	c.runner = newSyncRunner(c.runSync, opts.MinSyncInterval, opts.MaxSyncInterval)
	return c, nil
}

// Start registers the informers the controller needs on factory (pods, namespaces and
// NetworkPolicies of the whole cluster, since peers may run anywhere, and Nodes for its own
// spec.podCIDRs), starts the factory (which is idempotent, so controllers can share one),
// waits for those caches and for its handlers to have seen every object, checks that
// iptables, ip6tables (for an IPv6 node) and ipset work (an error wrapping ErrToolUnusable
// names the tool and its package if not), then launches the sync runner and returns.
// Nothing is programmed before then: a sync on a partial cache would apply a partial state,
// an allow window. The runner stops when ctx ends, leaving the rules in place
// (see Controller).
//
// A Controller starts once: a second Start is an error, and a new term as leader needs a new
// Controller from New. Start starts factory with ctx; under leader election, pass a factory
// whose informers outlive the term (leader.ScopedFactory; leader.RunController does both).
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("netpol: Start called twice")
	}
	logger := klog.FromContext(ctx).WithValues("controller", ComponentName, "node", c.opts.NodeName)
	ctx = klog.NewContext(ctx, logger)

	pods := factory.Core().V1().Pods()
	namespaces := factory.Core().V1().Namespaces()
	policies := factory.Networking().V1().NetworkPolicies()
	nodes := factory.Core().V1().Nodes()
	c.podLister, c.nsLister = pods.Lister(), namespaces.Lister()
	c.policyLister, c.nodeLister = policies.Lister(), nodes.Lister()

	var errs []error
	var synced []cache.InformerSynced
	add := func(kind string, inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("adding the %s event handler: %w", kind, err))
			return
		}
		synced = append(synced, inf.HasSynced, reg.HasSynced)
	}
	add("Pod", pods.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: c.handlePodAdd, UpdateFunc: c.handlePodUpdate, DeleteFunc: c.handleAny,
	})
	add("Namespace", namespaces.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: c.handleAny, UpdateFunc: c.handleNamespaceUpdate, DeleteFunc: c.handleAny,
	})
	add("NetworkPolicy", policies.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: c.handleAny, UpdateFunc: c.handlePolicyUpdate, DeleteFunc: c.handleAny,
	})
	add("Node", nodes.Informer(), cache.FilteringResourceEventHandler{
		FilterFunc: c.isOwnNode,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc: c.handleAny, UpdateFunc: c.handleNodeUpdate, DeleteFunc: c.handleAny,
		},
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netpol: %w", err)
	}

	if c.recorder == nil {
		c.recorder = events.NewRecorder(ctx, c.client, corev1.EventSource{Component: ComponentName, Host: c.opts.NodeName}, 3)
	}

	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("netpol: caches did not sync: %w", context.Cause(ctx))
	}
	// After the caches: the families to check come from the Node's pod CIDRs.
	if err := c.dataplane.Preflight(ctx, c.families()); err != nil {
		return fmt.Errorf("netpol: cannot program node %s: %w", c.opts.NodeName, err)
	}

	logger.Info("Starting NetworkPolicy sync", "minInterval", c.opts.MinSyncInterval, "maxInterval", c.opts.MaxSyncInterval)
	go func() {
		defer utilruntime.HandleCrashWithContext(ctx)
		c.runner.Run(ctx)
		logger.Info("Stopped NetworkPolicy sync; the rules stay in place until Cleanup")
	}()
	return nil
}

// handleAny asks for a sync. Adds and deletes always matter: the compile (not a handler)
// finds what changed and decides what a pod or namespace means for the rules. A
// DeletedFinalStateUnknown needs no unwrapping, as nothing is read from it.
func (c *Controller) handleAny(any) { c.runner.Signal() }

// handlePodAdd asks for a sync for a pod that has an address. A pod is created without one
// and gets it in a status update later; a sync for the create would change nothing and only
// push the sync that matters a MinSyncInterval later (kube-router drops such adds too).
func (c *Controller) handlePodAdd(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok && pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return
	}
	c.runner.Signal()
}

// handlePodUpdate asks for a sync when a field Compile reads changed: phase (finished pods
// drop out), addresses, node, host network, labels. kube-router filters the same way
// in its pod update handler; container ports are immutable. Resyncs change none of them and are dropped.
func (c *Controller) handlePodUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	pod, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 {
		c.runner.Signal()
		return
	}
	if old.Status.Phase != pod.Status.Phase || old.Status.PodIP != pod.Status.PodIP ||
		!equality.Semantic.DeepEqual(old.Status.PodIPs, pod.Status.PodIPs) ||
		old.Status.HostIP != pod.Status.HostIP || old.Spec.NodeName != pod.Spec.NodeName ||
		old.Spec.HostNetwork != pod.Spec.HostNetwork || !maps.Equal(old.Labels, pod.Labels) {
		c.runner.Signal()
	}
}

// handleNamespaceUpdate asks for a sync when a namespace's labels changed: namespaceSelectors
// read nothing else.
func (c *Controller) handleNamespaceUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Namespace)
	ns, ok2 := newObj.(*corev1.Namespace)
	if !ok1 || !ok2 || !maps.Equal(old.Labels, ns.Labels) {
		c.runner.Signal()
	}
}

// handlePolicyUpdate asks for a sync when a NetworkPolicy's spec changed; resyncs and
// metadata-only updates are dropped.
func (c *Controller) handlePolicyUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*networkingv1.NetworkPolicy)
	np, ok2 := newObj.(*networkingv1.NetworkPolicy)
	if !ok1 || !ok2 || !equality.Semantic.DeepEqual(old.Spec, np.Spec) {
		c.runner.Signal()
	}
}

// isOwnNode keeps the Node events of this controller's node.
func (c *Controller) isOwnNode(obj any) bool {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	node, ok := obj.(*corev1.Node)
	return ok && node.Name == c.opts.NodeName
}

// handleNodeUpdate asks for a sync when the node's pod CIDRs changed: the default deny covers
// every one of them (issue 4, "Do better" 5).
func (c *Controller) handleNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	node, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 || old.Spec.PodCIDR != node.Spec.PodCIDR || !equality.Semantic.DeepEqual(old.Spec.PodCIDRs, node.Spec.PodCIDRs) {
		c.runner.Signal()
	}
}
