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
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/workloop"
)

const (
	// nodeHostsFieldManager owns ConfigMap coredns's NodeHosts key and the
	// annotationNodeHostsNodes annotation, apart from the deploy controller, which owns the
	// rest of the ConfigMap: server-side apply of coredns.yaml (which has no NodeHosts) then
	// leaves them alone.
	nodeHostsFieldManager = "k3snet-nodehosts"
	// nodeHostsKey is the ConfigMap key CoreDNS's hosts plugin reads (coredns.yaml mounts it).
	nodeHostsKey = "NodeHosts"
	// annotationNodeHostsNodes lists, comma-separated, the nodes NodeHosts has lines for, so
	// that the lines of a node deleted while no controller watched still go, and only those.
	annotationNodeHostsNodes = "packaged.k3snet.io/nodehosts-nodes"
	// corednsConfigMap is the ConfigMap that carries NodeHosts.
	corednsConfigMap = "coredns"
	// ReasonNodeHostsSkipped is the Warning on a Node left out of NodeHosts: an InternalIP
	// that is not an IP address, or a name that is not a DNS name.
	ReasonNodeHostsSkipped  = "NodeHostsSkipped"
	messageNodeHostsSkipped = "Node left out of CoreDNS NodeHosts: %s"
	// nodeHostsEventComponent is the source of those Events.
	nodeHostsEventComponent = "nodehosts"
	// corednsName is the packaged component name that, disabled, turns NodeHosts off.
	corednsName = "coredns"
)

// mergeNodeHosts returns the hosts file existing with the lines of node replaced by one
// "<addr> <node>" line per address of addrs; no addresses removes them.
//
// A line belongs to node when its first host name is node, K3s's rule: its node controller
// rewrites such lines on every change of the node and drops them when the node goes, and
// leaves every other line alone. So a hand-added "10.0.0.9 node alias" is the node's and is
// replaced, while "10.0.0.9 alias node" is foreign and stays. Unlike K3s, which re-sorts the
// file by address, strips comments and blank lines and lets the node's line take over a
// foreign line of the same address, every other line stays verbatim and in place: the
// node's lines go where its first line was, or at the end. existing is returned unchanged
// when the node's lines already are as wanted.
func mergeNodeHosts(existing, node string, addrs []netip.Addr) string {
	if node == "" {
		// Comments and blank lines have no name; nothing is the empty name's.
		return existing
	}
	var lines []string
	if existing != "" {
		lines = strings.Split(strings.TrimSuffix(existing, "\n"), "\n")
	}
	var want []string
	for _, a := range addrs {
		if l := a.String() + " " + node; !slices.Contains(want, l) {
			want = append(want, l)
		}
	}
	out := make([]string, 0, len(lines)+len(want))
	placed := false
	for _, l := range lines {
		if hostsLineName(l) != node {
			out = append(out, l)
			continue
		}
		if !placed {
			out = append(out, want...)
			placed = true
		}
	}
	if !placed {
		out = append(out, want...)
	}
	if slices.Equal(out, lines) {
		return existing
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

// hostsLineName returns the first host name of a hosts file line, or "" for a comment, a
// blank line or a line without one.
func hostsLineName(line string) string {
	line, _, _ = strings.Cut(line, "#")
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return ""
	}
	return fields[1]
}

// nodeHosts returns the NodeHosts key existing with the lines of every node of nodes brought
// up to date by mergeNodeHosts, nodes in name order, and the lines of the nodes of written
// (the nodes it had lines for before) that are gone removed. A node has one
// "<InternalIP> <node name>" line per internal address, in the node's order; a node without
// an internal address, or being deleted, has none. own is the sorted list of the nodes
// left with lines, the next call's written.
//
// CoreDNS answers every name of a hosts line for the whole cluster, and a node writes its
// own status: an InternalIP of "10.0.0.66 registry-1.docker.io\n10.0.0.66" would answer
// for registry-1.docker.io. So only parsed addresses without a zone, written in their
// canonical form, and node names that are DNS names get in; a node with anything else has
// no lines and is returned in skipped (node name to the reason) for a Warning. A node whose
// name is not a DNS name cannot own a line, so the file is not touched for it.
func nodeHosts(existing string, nodes []*corev1.Node, written []string) (hosts string, own []string, skipped map[string]string) {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	hosts = existing
	skipped = map[string]string{}
	current := map[string]bool{}
	for _, n := range sorted {
		if errs := validation.IsDNS1123Subdomain(n.Name); len(errs) > 0 {
			skipped[n.Name] = fmt.Sprintf("node name %q is not a DNS name: %s", n.Name, strings.Join(errs, "; "))
			continue
		}
		current[n.Name] = true
		addrs, err := nodeAddrs(n)
		if err != nil {
			skipped[n.Name] = err.Error()
		}
		// K3s drops a node's lines once it is being deleted, not when the object goes.
		if n.DeletionTimestamp != nil {
			addrs = nil
		}
		hosts = mergeNodeHosts(hosts, n.Name, addrs)
		if len(addrs) > 0 {
			own = append(own, n.Name)
		}
	}
	// K3s removes a node's lines on its deletion, which its finalizer guarantees it sees.
	// Without one, a node deleted while no controller ran is only known gone from written: a
	// line of a name not in it may be anyone's (k3d's host.k3d.internal is exactly
	// "<addr> <name>"), so it stays.
	for _, name := range written {
		if !current[name] {
			hosts = mergeNodeHosts(hosts, name, nil)
		}
	}
	return hosts, own, skipped
}

// nodeAddrs returns the internal addresses of a node, or why it has none.
func nodeAddrs(n *corev1.Node) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP || a.Address == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("InternalIP %q is not an IP address", a.Address)
		}
		addrs = append(addrs, ip)
	}
	return addrs, nil
}

// writtenNodes returns the node names annotationNodeHostsNodes lists; anything else in it
// (the annotation is anyone's to edit) is ignored.
func writtenNodes(cm *corev1.ConfigMap) []string {
	var names []string
	for name := range strings.SplitSeq(cm.Annotations[annotationNodeHostsNodes], ",") {
		if len(validation.IsDNS1123Subdomain(name)) == 0 {
			names = append(names, name)
		}
	}
	return names
}

// nodeHostsController keeps the nodes' lines of NodeHosts in kube-system/coredns up to date
// (nodeHosts): each node's lines follow its addresses and go with it, and every other line
// (k3d's host.k3d.internal, hosts added by hand) stays, as with K3s's node controller. It is
// level-triggered: every change leads to one pass over all nodes, which edits only the lines
// of nodes that changed.
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
	// configMapFactory watches only kube-system's coredns ConfigMap: a cluster's other
	// ConfigMaps can be many and large, and NodeHosts needs none of them.
	configMapFactory informers.SharedInformerFactory
}

// newNodeHosts registers the Node informer on factory (before the caller starts it) and its
// own informer of the coredns ConfigMap, and returns the controller; run launches it.
func (c *Controller) newNodeHosts(factory informers.SharedInformerFactory) (*nodeHostsController, error) {
	nodes := factory.Core().V1().Nodes()
	configMapFactory := informers.NewSharedInformerFactoryWithOptions(c.client, 0,
		informers.WithNamespace(addonNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", corednsConfigMap).String()
		}))
	cms := configMapFactory.Core().V1().ConfigMaps()
	n := &nodeHostsController{
		client:     c.client,
		nodes:      nodes.Lister(),
		configMaps: cms.Lister(),
		synced:     []cache.InformerSynced{nodes.Informer().HasSynced, cms.Informer().HasSynced},
		recorder:   &record.FakeRecorder{},
		skipped:    map[string]string{},

		configMapFactory: configMapFactory,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "nodehosts"}),
	}
	// One key: every relevant change leads to the same pass over all nodes.
	key := cache.ObjectName{Namespace: addonNamespace, Name: corednsConfigMap}
	enqueue := func() { n.queue.Add(key) }
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { enqueue() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Node)
			nw, ok2 := newObj.(*corev1.Node)
			// Only addresses and deletion matter; status heartbeats do not.
			if ok1 && ok2 && slices.Equal(o.Status.Addresses, nw.Status.Addresses) &&
				(o.DeletionTimestamp == nil) == (nw.DeletionTimestamp == nil) {
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
	n.configMapFactory.Start(ctx.Done())
	context.AfterFunc(ctx, n.configMapFactory.Shutdown)
	if !cache.WaitForCacheSync(ctx.Done(), n.synced...) {
		n.queue.ShutDown()
		return fmt.Errorf("NodeHosts caches did not sync: %w", context.Cause(ctx))
	}
	go func() {
		defer utilruntime.HandleCrashWithContext(ctx)
		defer n.queue.ShutDown()
		workloop.Run(ctx, 1, n.queue, "Syncing NodeHosts", func(ctx context.Context, _ cache.ObjectName) error {
			return n.sync(ctx)
		})
		<-ctx.Done()
	}()
	go func() {
		<-ctx.Done()
		n.queue.ShutDown()
	}()
	return nil
}

// sync writes NodeHosts when the nodes' lines differ from the nodes. A missing ConfigMap
// is left to the deploy controller to create; its add event brings the controller back.
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
	got, ok := cm.Data[nodeHostsKey]
	want, own, skipped := nodeHosts(got, nodes, writtenNodes(cm))
	n.warnSkipped(ctx, skipped)
	ownValue := strings.Join(own, ",")
	if ok && got == want && cm.Annotations[annotationNodeHostsNodes] == ownValue {
		return nil
	}
	klog.FromContext(ctx).V(2).Info("Updating NodeHosts", "configMap", klog.KObj(cm), "nodes", len(nodes))
	// want is an edit of what the cache holds: the resourceVersion makes the apply fail,
	// and the pass run again, if someone changed NodeHosts since, instead of undoing that.
	apply := corev1ac.ConfigMap(corednsConfigMap, addonNamespace).
		WithResourceVersion(cm.ResourceVersion).
		WithData(map[string]string{nodeHostsKey: want})
	if ownValue != "" {
		// Left out once empty, so server-side apply removes the annotation.
		apply.WithAnnotations(map[string]string{annotationNodeHostsNodes: ownValue})
	}
	_, err = n.client.CoreV1().ConfigMaps(addonNamespace).Apply(ctx, apply, metav1.ApplyOptions{FieldManager: nodeHostsFieldManager, Force: true})
	if apierrors.IsConflict(err) {
		// The informer delivers the newer ConfigMap and its event brings the next pass.
		klog.FromContext(ctx).V(2).Info("NodeHosts changed meanwhile, retrying on the new version", "configMap", klog.KObj(cm))
		return nil
	}
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
