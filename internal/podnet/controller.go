package podnet

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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

// Event reasons on the node's own Node object.
const (
	// ReasonNetworkConfigured (Normal) follows writing the CNI configuration: pods can start.
	ReasonNetworkConfigured = "NetworkConfigured"
	// ReasonRouteFailed (Warning) names a pod CIDR of another node that could not be routed.
	ReasonRouteFailed = "RouteFailed"

	eventComponent = "k3snet-podnet"
	queueName      = "podnet"
	// resyncInterval repairs routes and rules someone else removed.
	resyncInterval = 5 * time.Minute
	// syncKey is the queue's only key: every change is one sync of the whole node.
	syncKey = "node"
)

// Options configures a node's pod network.
type Options struct {
	// NodeName is this node.
	NodeName string
	// CNIConfDir is where containerd reads the CNI configuration.
	CNIConfDir string
	// IPAMDataDir is host-local's state directory; empty is its default (/var/lib/cni/networks).
	IPAMDataDir string
	// ClusterCIDRs are the server's --cluster-cidr; together with every node's pod CIDRs they
	// are the pod ranges whose traffic is not masqueraded.
	ClusterCIDRs []netip.Prefix
}

// Controller keeps the node's CNI configuration, routes and masquerade rules in line with
// the Nodes of the cluster. Build it with New, run it with Start.
type Controller struct {
	// client sends Events.
	client kubernetes.Interface
	opts   Options
	// nodes reads Nodes from the shared informer; nodesSynced reports its first list.
	nodes       corelisters.NodeLister
	nodesSynced cache.InformerSynced
	// queue holds syncKey while a sync is due.
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	// configured is set once the CNI configuration is written.
	configured atomic.Bool
	started    atomic.Bool
	// lastRouteError is the last route failure announced, so it is announced once.
	lastRouteError string
}

// New checks opts and returns a Controller; nothing runs until Start.
func New(client kubernetes.Interface, opts Options) (*Controller, error) {
	var errs []error
	if client == nil {
		errs = append(errs, errors.New("nil client"))
	}
	if opts.NodeName == "" {
		errs = append(errs, errors.New("NodeName is required"))
	}
	if !filepath.IsAbs(opts.CNIConfDir) {
		errs = append(errs, fmt.Errorf("CNIConfDir %q must be an absolute path", opts.CNIConfDir))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("podnet: %w", err)
	}
	return &Controller{
		client: client,
		opts:   opts,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: queueName}),
	}, nil
}

// ClusterRole is what the controller needs: to read Nodes and to send Events.
func ClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "k3snet-podnet"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
		},
	}
}

// Start registers a Node informer on factory, starts it, waits for its cache, then keeps the
// node's network in line until ctx ends; it returns once the workers run.
func (c *Controller) Start(ctx context.Context, factory informers.SharedInformerFactory) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("podnet: Start called twice")
	}
	logger := klog.FromContext(ctx).WithName("podnet")
	ctx = klog.NewContext(ctx, logger)
	nodes := factory.Core().V1().Nodes()
	enqueue := func(any) { c.queue.Add(syncKey) }
	reg, err := nodes.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(old, cur any) { c.handleNodeUpdate(old, cur) },
		DeleteFunc: enqueue,
	}, cache.HandlerOptions{Logger: &logger})
	if err != nil {
		return fmt.Errorf("podnet: adding the node event handler: %w", err)
	}
	c.nodes, c.nodesSynced = nodes.Lister(), reg.HasSynced
	factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.nodesSynced) {
		return fmt.Errorf("podnet: node cache did not sync: %w", context.Cause(ctx))
	}
	if c.recorder == nil {
		c.recorder = events.NewRecorder(ctx, c.client, corev1.EventSource{Component: eventComponent, Host: c.opts.NodeName}, 4)
	}
	go c.run(ctx)
	logger.Info("Started the pod network", "node", c.opts.NodeName, "cniConfDir", c.opts.CNIConfDir)
	return nil
}

// Configured reports whether the node's CNI configuration has been written (pods can start).
func (c *Controller) Configured() bool { return c.configured.Load() }

// handleNodeUpdate queues a sync when a node's pod CIDRs or addresses change; heartbeats are
// dropped.
func (c *Controller) handleNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1.Node)
	cur, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 || (slices.Equal(old.Spec.PodCIDRs, cur.Spec.PodCIDRs) && slices.Equal(old.Status.Addresses, cur.Status.Addresses)) {
		return
	}
	c.queue.Add(syncKey)
}

func (c *Controller) run(ctx context.Context) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	c.queue.Add(syncKey)
	workloop.Run(ctx, 1, c.queue, "Syncing the pod network", c.syncAndResync)
	<-ctx.Done()
}

// syncAndResync is sync, and after a success the next sync in resyncInterval: routes and
// rules someone removed come back.
func (c *Controller) syncAndResync(ctx context.Context, key string) error {
	err := c.sync(ctx)
	if err == nil {
		c.queue.AddAfter(key, resyncInterval)
	}
	return err
}

// sync writes the CNI configuration once the node has pod CIDRs, then routes and rules.
func (c *Controller) sync(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	self, err := c.nodes.Get(c.opts.NodeName)
	if err != nil {
		logger.V(2).Info("Waiting for the node to register", "node", c.opts.NodeName)
		return nil
	}
	own := parsePrefixes(self.Spec.PodCIDRs)
	if len(own) == 0 {
		logger.V(2).Info("Waiting for the node's pod CIDRs", "node", c.opts.NodeName)
		return nil
	}
	written, err := c.writeConflist(own)
	if err != nil {
		return err
	}
	if written {
		logger.Info("Wrote the CNI configuration", "podCIDRs", own, "file", filepath.Join(c.opts.CNIConfDir, ConflistName))
		c.recorder.Eventf(self, corev1.EventTypeNormal, ReasonNetworkConfigured, "Pod network configured for %s", joinPrefixes(own))
	}
	c.configured.Store(true)

	all, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("podnet: listing nodes: %w", err)
	}
	infos := make([]nodeInfo, 0, len(all))
	ranges := slices.Clone(c.opts.ClusterCIDRs)
	for _, n := range all {
		info := nodeInfo{name: n.Name, podCIDRs: parsePrefixes(n.Spec.PodCIDRs)}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				info.internalIPs = append(info.internalIPs, ip.Unmap())
			}
		}
		infos = append(infos, info)
		ranges = append(ranges, info.podCIDRs...)
	}
	var errs []error
	if err := syncRoutes(ctx, desiredRoutes(c.opts.NodeName, infos)); err != nil {
		if msg := err.Error(); msg != c.lastRouteError {
			c.lastRouteError = msg
			c.recorder.Event(self, corev1.EventTypeWarning, ReasonRouteFailed, msg)
		}
		errs = append(errs, err)
	} else {
		c.lastRouteError = ""
	}
	if err := syncMasquerade(ctx, own, podRangesOf(ranges)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// writeConflist writes the CNI configuration when it differs from the file's, atomically,
// and reports whether it wrote.
func (c *Controller) writeConflist(podCIDRs []netip.Prefix) (bool, error) {
	want, err := Conflist(podCIDRs, c.opts.IPAMDataDir)
	if err != nil {
		return false, err
	}
	path := filepath.Join(c.opts.CNIConfDir, ConflistName)
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	if err := os.MkdirAll(c.opts.CNIConfDir, 0o755); err != nil {
		return false, fmt.Errorf("podnet: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, want, 0o644); err != nil {
		return false, fmt.Errorf("podnet: writing %s: %w", path, err)
	}
	// containerd watches the directory and picks the first file by name, so a half-written
	// file must never carry the final name.
	if err := os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("podnet: writing %s: %w", path, err)
	}
	return true, nil
}

// parsePrefixes parses a Node's pod CIDRs, skipping anything that is not a network address.
func parsePrefixes(cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil && p == p.Masked() {
			out = append(out, p)
		}
	}
	return out
}

func sortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
}

func joinPrefixes(ps []netip.Prefix) string {
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(p.String())
	}
	return b.String()
}
