package packaged

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

const (
	// nodeHostsFieldManager owns ConfigMap coredns's NodeHosts key, apart from the deploy
	// controller, which owns the rest of the ConfigMap: server-side apply of coredns.yaml
	// (which has no NodeHosts) then leaves the key alone (spec A.4).
	nodeHostsFieldManager = "k3snet-nodehosts"
	// nodeHostsKey is the ConfigMap key CoreDNS's hosts plugin reads (coredns.yaml mounts it).
	nodeHostsKey = "NodeHosts"
	// corednsConfigMap is the ConfigMap that carries NodeHosts.
	corednsConfigMap = "coredns"
	// ReasonNodeHostsSkipped is the Warning on a Node left out of NodeHosts: an InternalIP
	// that is not an IP address, or a name that is not a DNS name.
	ReasonNodeHostsSkipped  = "NodeHostsSkipped"
	messageNodeHostsSkipped = "Node left out of CoreDNS NodeHosts: %s"
	// nodeHostsEventComponent is the source of those Events.
	nodeHostsEventComponent = "nodehosts"
	// corednsName is the packaged component name that, disabled, turns NodeHosts off (spec A.5).
	corednsName = "coredns"
)

// nodeHosts renders the NodeHosts key: one "<InternalIP> <node name>" line per internal
// address of every node, nodes sorted by name, addresses in the node's order (spec A.4). A
// node without an internal address has no line.
//
// CoreDNS answers every name of a hosts line for the whole cluster, and a node writes its
// own status: an InternalIP of "10.0.0.66 registry-1.docker.io\n10.0.0.66" would answer
// for registry-1.docker.io. So only parsed addresses without a zone, written in their
// canonical form, and node names that are DNS names get in; a node with anything else is
// left out entirely and returned in skipped (node name to the reason) for a Warning.
func nodeHosts(nodes []*corev1.Node) (hosts string, skipped map[string]string) {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	skipped = map[string]string{}
	for _, n := range sorted {
		lines, err := nodeHostsLines(n)
		if err != nil {
			skipped[n.Name] = err.Error()
			continue
		}
		b.WriteString(lines)
	}
	return b.String(), skipped
}

// nodeHostsLines returns the NodeHosts lines of one node, or why it has none.
func nodeHostsLines(n *corev1.Node) (string, error) {
	if errs := validation.IsDNS1123Subdomain(n.Name); len(errs) > 0 {
		return "", fmt.Errorf("node name %q is not a DNS name: %s", n.Name, strings.Join(errs, "; "))
	}
	var b strings.Builder
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP || a.Address == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil || ip.Zone() != "" {
			return "", fmt.Errorf("InternalIP %q is not an IP address", a.Address)
		}
		fmt.Fprintf(&b, "%s %s\n", ip, n.Name)
	}
	return b.String(), nil
}

// nodeHostsController keeps NodeHosts in kube-system/coredns equal to nodeHosts of every
// node. It rewrites the whole key from the node list (level-triggered), so the entry of a
// deleted node goes; entries added by hand are not kept: CoreDNS custom hosts belong in
// ConfigMap coredns-custom (K3s #2214, k3d #1112).
type nodeHostsController struct {
	client     kubernetes.Interface
	nodes      corelisters.NodeLister
	configMaps corelisters.ConfigMapLister
	synced     []cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// recorder sends the Warnings about nodes left out; run sets it.
	recorder record.EventRecorder
	// skipped is the reason each node was last left out for, so a Warning goes out when
	// the reason changes, not on every sync. Only the one worker touches it.
	skipped map[string]string
}

// newNodeHosts registers the Node and ConfigMap informers on factory (before the caller
// starts it) and returns the controller; run launches it.
func (c *Controller) newNodeHosts(factory informers.SharedInformerFactory) (*nodeHostsController, error) {
	nodes := factory.Core().V1().Nodes()
	cms := factory.Core().V1().ConfigMaps()
	n := &nodeHostsController{
		client:     c.client,
		nodes:      nodes.Lister(),
		configMaps: cms.Lister(),
		synced:     []cache.InformerSynced{nodes.Informer().HasSynced, cms.Informer().HasSynced},
		recorder:   &record.FakeRecorder{},
		skipped:    map[string]string{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "nodehosts"}),
	}
	// One key: every relevant change leads to the same whole-key rewrite.
	key := cache.ObjectName{Namespace: addonNamespace, Name: corednsConfigMap}
	enqueue := func() { n.queue.Add(key) }
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { enqueue() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Node)
			nw, ok2 := newObj.(*corev1.Node)
			// Only addresses matter; status heartbeats do not.
			if ok1 && ok2 && slices.Equal(o.Status.Addresses, nw.Status.Addresses) {
				return
			}
			enqueue()
		},
		DeleteFunc: func(any) { enqueue() },
	}); err != nil {
		return nil, fmt.Errorf("watching Nodes for NodeHosts: %w", err)
	}
	if _, err := cms.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			cm, ok := obj.(*corev1.ConfigMap)
			return ok && cm.Namespace == addonNamespace && cm.Name == corednsConfigMap
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { enqueue() },
			UpdateFunc: func(oldObj, newObj any) {
				// A resync of an unchanged ConfigMap needs no work (SC's ResourceVersion check).
				if oldObj.(*corev1.ConfigMap).ResourceVersion == newObj.(*corev1.ConfigMap).ResourceVersion {
					return
				}
				enqueue()
			},
		},
	}); err != nil {
		return nil, fmt.Errorf("watching ConfigMaps for NodeHosts: %w", err)
	}
	return n, nil
}

// run waits for the caches and runs the worker until ctx ends.
func (n *nodeHostsController) run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), n.synced...) {
		n.queue.ShutDown()
		return fmt.Errorf("NodeHosts caches did not sync: %w", context.Cause(ctx))
	}
	go func() {
		defer utilruntime.HandleCrashWithContext(ctx)
		defer n.queue.ShutDown()
		wait.UntilWithContext(ctx, n.worker, 0)
	}()
	go func() {
		<-ctx.Done()
		n.queue.ShutDown()
	}()
	return nil
}

func (n *nodeHostsController) worker(ctx context.Context) {
	for {
		key, quit := n.queue.Get()
		if quit {
			return
		}
		err := n.sync(ctx)
		if err == nil {
			n.queue.Forget(key)
		} else {
			utilruntime.HandleErrorWithContext(ctx, err, "Syncing NodeHosts failed", "configMap", key)
			n.queue.AddRateLimited(key)
		}
		n.queue.Done(key)
	}
}

// sync writes NodeHosts when it differs from the nodes. A missing ConfigMap is left to the
// deploy controller to create; its add event brings the controller back.
func (n *nodeHostsController) sync(ctx context.Context) error {
	cm, err := n.configMaps.ConfigMaps(addonNamespace).Get(corednsConfigMap)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting ConfigMap %s/%s: %w", addonNamespace, corednsConfigMap, err)
	}
	nodes, err := n.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing Nodes: %w", err)
	}
	want, skipped := nodeHosts(nodes)
	n.warnSkipped(ctx, skipped)
	if got, ok := cm.Data[nodeHostsKey]; ok && got == want {
		return nil
	}
	klog.FromContext(ctx).V(2).Info("Updating NodeHosts", "configMap", klog.KObj(cm), "nodes", len(nodes))
	apply := corev1ac.ConfigMap(corednsConfigMap, addonNamespace).WithData(map[string]string{nodeHostsKey: want})
	_, err = n.client.CoreV1().ConfigMaps(addonNamespace).Apply(ctx, apply, metav1.ApplyOptions{FieldManager: nodeHostsFieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("applying NodeHosts to ConfigMap %s/%s: %w", addonNamespace, corednsConfigMap, err)
	}
	return nil
}

// warnSkipped logs and sends a Warning Event on every node newly left out of NodeHosts, or
// left out for a new reason, and forgets the nodes that are back or gone.
func (n *nodeHostsController) warnSkipped(ctx context.Context, skipped map[string]string) {
	for name, reason := range skipped {
		if n.skipped[name] == reason {
			continue
		}
		n.skipped[name] = reason
		klog.FromContext(ctx).Info("Node left out of NodeHosts", "node", klog.KRef("", name), "reason", reason)
		if node, err := n.nodes.Get(name); err == nil {
			n.recorder.Eventf(node, corev1.EventTypeWarning, ReasonNodeHostsSkipped, messageNodeHostsSkipped, reason)
		}
	}
	for name := range n.skipped {
		if _, ok := skipped[name]; !ok {
			delete(n.skipped, name)
		}
	}
}
