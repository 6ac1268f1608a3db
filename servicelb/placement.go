package servicelb

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/internal/podspec"
)

// This file answers "which nodes can run this Service's LB pod, and why not the others" with
// the rules the DaemonSet controller and the scheduler apply to the rendered DaemonSet (node
// selector and affinity, taints and tolerations, host ports). K3s leaves the answer to the scheduler, so a Service stuck <pending> says
// nothing; the controller turns the reasons below into an Event instead.

// maxReasonGroups bounds the reasons an Event message lists; the rest are counted.
const maxReasonGroups = 3

// hostPort is a port a pod binds on its node's addresses, by protocol: TCP 53 and UDP 53 are
// different ports. It is the map key on placement's hot path, so the protocol is a number.
type hostPort struct {
	port  int32
	proto protocolNum
}

// protocolNum numbers the protocols a container port can have; the API allows no other.
type protocolNum uint8

const (
	protoTCP protocolNum = iota
	protoUDP
	protoSCTP
	protoOther
)

// newHostPort returns the key for port/proto; an empty protocol is TCP, the API default.
func newHostPort(port int32, proto corev1.Protocol) hostPort {
	h := hostPort{port: port}
	switch proto {
	case corev1.ProtocolTCP, "":
		h.proto = protoTCP
	case corev1.ProtocolUDP:
		h.proto = protoUDP
	case corev1.ProtocolSCTP:
		h.proto = protoSCTP
	default:
		h.proto = protoOther
	}
	return h
}

func (h hostPort) String() string {
	name := [...]string{protoTCP: "TCP", protoUDP: "UDP", protoSCTP: "SCTP", protoOther: "other"}[h.proto]
	return strconv.Itoa(int(h.port)) + "/" + name
}

// portHolder is a pod that holds a host port.
type portHolder struct {
	// pod is the pod's namespace/name.
	pod string
	// owner is the namespace/name of the pod's controller (DaemonSet, ReplicaSet, ...), or the
	// pod when it has none: every svclb pod of one Service then reads as one holder.
	owner string
	// svcName and svcNamespace are the pod's svclb labels, empty on other pods.
	svcName, svcNamespace string
}

// hostPortIndex lists, per node name, the host ports in use and the pods holding them. Build it
// once per sync with indexHostPorts and place any number of Services against it.
type hostPortIndex map[string]map[hostPort][]portHolder

// indexHostPorts indexes the host ports that pods hold on their nodes, as the scheduler counts
// them: the hostPorts of the containers and of the sidecars (init containers with
// restartPolicy Always, which run as long as the pod) of every pod bound to a node that has
// not finished, and the container ports of hostNetwork pods, which bind on the host whether or
// not hostPort is written out (the API defaults hostPort to containerPort there). The hostIP of
// a port does not matter: an LB pod binds every address, so it conflicts with any of them.
func indexHostPorts(pods []*corev1.Pod, keys Keys) hostPortIndex {
	idx := hostPortIndex{}
	for _, pod := range pods {
		if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		var holder *portHolder
		for hp := range hostPortsOf(pod) {
			if holder == nil {
				holder = newPortHolder(pod, keys)
			}
			byPort := idx[pod.Spec.NodeName]
			if byPort == nil {
				byPort = map[hostPort][]portHolder{}
				idx[pod.Spec.NodeName] = byPort
			}
			byPort[hp] = append(byPort[hp], *holder)
		}
	}
	// Pods come from a lister in no order; sorted holders make the reasons deterministic.
	for _, byPort := range idx {
		for hp, holders := range byPort {
			if len(holders) > 1 {
				slices.SortFunc(holders, func(a, b portHolder) int { return strings.Compare(a.pod, b.pod) })
				byPort[hp] = slices.Compact(holders)
			}
		}
	}
	return idx
}

// hostPortsOf yields the host ports of pod's serving containers, whether or not the pod is
// bound or finished (indexHostPorts checks that): each hostPort, or the containerPort of a
// hostNetwork pod.
func hostPortsOf(pod *corev1.Pod) iter.Seq[hostPort] {
	return func(yield func(hostPort) bool) {
		for c := range podspec.ServingContainers(pod) {
			for _, cp := range c.Ports {
				port := cp.HostPort
				if port == 0 && pod.Spec.HostNetwork {
					port = cp.ContainerPort
				}
				if port != 0 && !yield(newHostPort(port, cp.Protocol)) {
					return
				}
			}
		}
	}
}

func newPortHolder(pod *corev1.Pod, keys Keys) *portHolder {
	h := &portHolder{
		pod:          pod.Namespace + "/" + pod.Name,
		svcName:      pod.Labels[keys.SvcName],
		svcNamespace: pod.Labels[keys.SvcNamespace],
	}
	h.owner = h.pod
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		h.owner = pod.Namespace + "/" + ref.Name
	}
	return h
}

// rejectKind is why a node cannot host a Service's LB pod, in the order the rules are applied.
type rejectKind int

const (
	rejectDeleting rejectKind = iota + 1
	rejectNotAllowListed
	rejectOtherPool
	rejectTaint
	rejectPortTaken
)

// rejection says why one node cannot host the Service's LB pod. Only the first failing rule is
// kept: it is the one a user has to fix first. It points into the nodes and the index it was
// computed from rather than copying them: a sweep over 1,000 Services and 1,000 nodes makes
// close to a million of these.
type rejection struct {
	node string
	kind rejectKind
	// arg is the enablelb key (rejectNotAllowListed) or the Service's pool (rejectOtherPool).
	arg string
	// taint is the first taint no toleration matches (rejectTaint).
	taint *corev1.Taint
	// port is the first Service port already taken, and holder who has it (rejectPortTaken).
	port   hostPort
	holder *portHolder
}

// String is the reason alone, without the node, so that nodes failing the same way group
// under one text in an Event message.
func (r rejection) String() string {
	switch r.kind {
	case rejectDeleting:
		return "being deleted"
	case rejectNotAllowListed:
		return "not labelled " + r.arg + "=true"
	case rejectOtherPool:
		return "not in lbpool " + r.arg
	case rejectTaint:
		return "untolerated taint " + taintString(*r.taint)
	case rejectPortTaken:
		return "port " + r.port.String() + " taken by " + r.holder.owner
	}
	return "unknown reason"
}

func taintString(t corev1.Taint) string {
	if t.Value == "" {
		return t.Key + ":" + string(t.Effect)
	}
	return t.Key + "=" + t.Value + ":" + string(t.Effect)
}

// placement is where a Service's LB pod can run: the eligible node names and, for every other
// node, why not. Both are sorted by node name.
type placement struct {
	eligible []string
	rejected []rejection
}

// String summarises p for an Event message on the Service, short whatever the cluster size:
// "no node can host the load balancer: 3 nodes: port 443/TCP taken by kube-system/svclb-a-1234;
// 1 node: untolerated taint dedicated=db:NoSchedule".
func (p placement) String() string {
	total := len(p.eligible) + len(p.rejected)
	var b strings.Builder
	switch {
	case total == 0:
		return "no node can host the load balancer: the cluster has no nodes"
	case len(p.eligible) == 0:
		b.WriteString("no node can host the load balancer: ")
	default:
		fmt.Fprintf(&b, "%d of %d nodes can host the load balancer", len(p.eligible), total)
		if len(p.rejected) == 0 {
			return b.String()
		}
		b.WriteString("; ")
	}

	type group struct {
		reason string
		nodes  int
	}
	var groups []group
	at := map[string]int{}
	for _, r := range p.rejected {
		s := r.String()
		if i, ok := at[s]; ok {
			groups[i].nodes++
			continue
		}
		at[s] = len(groups)
		groups = append(groups, group{reason: s, nodes: 1})
	}
	slices.SortFunc(groups, func(a, b group) int {
		return cmp.Or(cmp.Compare(b.nodes, a.nodes), strings.Compare(a.reason, b.reason))
	})
	for i, g := range groups {
		if i == maxReasonGroups {
			rest := 0
			for _, g := range groups[i:] {
				rest += g.nodes
			}
			fmt.Fprintf(&b, "; %s for other reasons", plural(rest, "node"))
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", plural(g.nodes, "node"), g.reason)
	}
	return b.String()
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// allowListMode reports whether any node carries the enablelb label, whatever its value: from
// then on only nodes labelled "true" host LB pods. Nodes being deleted do not
// count, so removing the label from the last node, or deleting that node, leaves the mode
// (K3s #14625 never leaves it).
func allowListMode(nodes []*corev1.Node, keys Keys) bool {
	for _, n := range nodes {
		if n.DeletionTimestamp != nil {
			continue
		}
		if _, ok := n.Labels[keys.EnableLB]; ok {
			return true
		}
	}
	return false
}

// servicePool is the lbpool that restricts the Service's LB pods, "" for none: its lbpool
// label in allow-list mode, and nothing outside it, as in K3s, whose pool selector only narrows
// the enablelb nodes. A pooled Service in a cluster with no enablelb node is then served by
// every node rather than left to whichever nodes happen to carry a pool label.
func servicePool(svc *corev1.Service, allowList bool, keys Keys) string {
	if !allowList {
		return ""
	}
	return svc.Labels[keys.LBPool]
}

// inPool reports whether node belongs to pool, by its lbpool label or by the per-pool label
// poolLabel, lbpool.svccontroller.<program>.cattle.io/<pool>=true.
func inPool(node *corev1.Node, pool, poolLabel string, keys Keys) bool {
	return node.Labels[keys.LBPool] == pool || node.Labels[poolLabel] == "true"
}

// placeLoadBalancer decides, for each node, whether the LB pod of svc can run there: the node
// is not being deleted; in allow-list mode it is labelled enablelb=true and, when the Service
// names a pool (its lbpool label, see servicePool), it is in that pool; each NoSchedule or
// NoExecute taint is tolerated by tolerations (the rendered DaemonSet's) or by what the
// DaemonSet controller adds itself; and no other pod holds one of the Service's ports on it.
// The Service's own LB pods hold its ports by design and are skipped.
//
// Pools apply in allow-list mode only, as the rendered node affinity does (see poolAffinity).
func placeLoadBalancer(svc *corev1.Service, nodes []*corev1.Node, tolerations []corev1.Toleration,
	ports hostPortIndex, keys Keys) placement {
	allowList := allowListMode(nodes, keys)
	pool := servicePool(svc, allowList, keys)
	poolLabel := keys.PoolLabel(pool)
	want := make([]hostPort, 0, len(svc.Spec.Ports))
	for _, sp := range svc.Spec.Ports {
		want = append(want, newHostPort(sp.Port, sp.Protocol))
	}

	var p placement
	for _, node := range nodes {
		r := rejection{node: node.Name}
		switch {
		case node.DeletionTimestamp != nil:
			r.kind = rejectDeleting
		case allowList && node.Labels[keys.EnableLB] != "true":
			r.kind, r.arg = rejectNotAllowListed, keys.EnableLB
		case pool != "" && !inPool(node, pool, poolLabel, keys):
			r.kind, r.arg = rejectOtherPool, pool
		default:
			if t := untoleratedTaint(node.Spec.Taints, tolerations); t != nil {
				r.kind, r.taint = rejectTaint, t
			} else if hp, h := portTaken(ports[node.Name], want, svc); h != nil {
				r.kind, r.port, r.holder = rejectPortTaken, hp, h
			}
		}
		if r.kind == 0 {
			p.eligible = append(p.eligible, node.Name)
		} else {
			p.rejected = append(p.rejected, r)
		}
	}
	slices.Sort(p.eligible)
	slices.SortFunc(p.rejected, func(a, b rejection) int { return strings.Compare(a.node, b.node) })
	return p
}

// untoleratedTaint returns the first taint that keeps the pod off the node, or nil.
// PreferNoSchedule only steers the scheduler, so it never does.
func untoleratedTaint(taints []corev1.Taint, tolerations []corev1.Toleration) *corev1.Taint {
	for i := range taints {
		t := &taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule || daemonSetTolerates(*t) {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(tol corev1.Toleration) bool { return tolerates(tol, *t) }) {
			return t
		}
	}
	return nil
}

// daemonSetTolerates reports whether the DaemonSet controller's own tolerations, which it adds
// to every pod it creates (not-ready and unreachable NoExecute; disk, memory and PID pressure
// and unschedulable NoSchedule), cover t. The network-unavailable one is for hostNetwork pods
// only, which LB pods are not.
func daemonSetTolerates(t corev1.Taint) bool {
	switch t.Effect {
	case corev1.TaintEffectNoExecute:
		return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
	case corev1.TaintEffectNoSchedule:
		switch t.Key {
		case corev1.TaintNodeDiskPressure, corev1.TaintNodeMemoryPressure, corev1.TaintNodePIDPressure,
			corev1.TaintNodeUnschedulable:
			return true
		}
	}
	return false
}

// tolerates is the Toleration API's matching rule for the operators we render: "Empty means
// match all taint effects"; an empty key with Exists matches every taint; Exists matches any
// value; Equal (or empty) needs the same value.
func tolerates(tol corev1.Toleration, t corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return true
	case "", corev1.TolerationOpEqual:
		return tol.Value == t.Value
	}
	return false
}

// portTaken returns the first of want that a pod other than svc's own LB pods holds on the
// node, and that pod; the pod is nil when every port is free.
func portTaken(used map[hostPort][]portHolder, want []hostPort, svc *corev1.Service) (hostPort, *portHolder) {
	if len(used) == 0 {
		return hostPort{}, nil
	}
	for _, hp := range want {
		holders := used[hp]
		for i := range holders {
			h := &holders[i]
			if h.svcName == svc.Name && h.svcNamespace == svc.Namespace {
				continue
			}
			return hp, h
		}
	}
	return hostPort{}, nil
}
