package servicelb

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/k3snet/k3snet/internal/nodeaddr"
)

// loadBalancerIngress computes status.loadBalancer.ingress of svc from the nodes that run one
// of its ready LB pods. pods are the Service's LB pods (the caller lists them by the
// svcname/svcnamespace labels), nodes the known nodes by name, endpointSlices the Service's
// EndpointSlices (only read for externalTrafficPolicy Local; others are skipped), and
// defaultMode the ipMode the controller is configured with ("" is VIP).
//
// A pod counts when it is bound to a node, has an IP, has condition Ready True and its node is
// known and not being deleted (a node being deleted counts as gone). For ETP Local the node must
// also have a ready local endpoint of the Service, since kube-proxy drops external
// traffic on the other nodes.
//
// Each node is published by its own addresses (see hostAddresses): its ExternalIPs if it has
// one, else its InternalIPs.
//
// They are grouped by family in spec.ipFamilies order, families the Service lacks dropped,
// sorted numerically within a family (K3s sorts text: 10.0.0.10 before 10.0.0.9) and
// deduplicated. Every entry sets ipMode, so the result compares equal to what the API server
// stores (see ingressEqual).
func loadBalancerIngress(svc *corev1.Service, pods []*corev1.Pod, nodes map[string]*corev1.Node,
	endpointSlices []*discoveryv1.EndpointSlice, defaultMode corev1.LoadBalancerIPMode, keys Keys) []corev1.LoadBalancerIngress {
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	var withEndpoints map[string]bool
	if local {
		withEndpoints = nodesWithReadyEndpoints(svc, endpointSlices)
	}

	hosts := make([]*corev1.Node, 0, len(pods))
	for _, pod := range pods {
		if pod.Spec.NodeName == "" || pod.Status.PodIP == "" || !podReady(pod) {
			continue
		}
		if local && !withEndpoints[pod.Spec.NodeName] {
			continue
		}
		node := nodes[pod.Spec.NodeName]
		if node == nil || node.DeletionTimestamp != nil {
			continue
		}
		hosts = append(hosts, node)
	}
	families := serviceFamilies(svc)
	addrs := make([]netip.Addr, 0, len(hosts))
	for _, node := range hosts {
		addrs = hostAddresses(addrs, node, families)
	}
	if len(addrs) == 0 {
		return nil
	}

	// Addr.Compare orders IPv4 before IPv6 and numerically within each; compacting
	// removes the addresses of nodes that run two LB pods during a rollout.
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	mode := ingressIPMode(svc, defaultMode, keys)
	out := make([]corev1.LoadBalancerIngress, 0, len(addrs))
	modes := make([]corev1.LoadBalancerIPMode, len(addrs)) // one allocation, one pointer per entry
	for _, fam := range families {
		for _, addr := range addrs {
			if addrFamily(addr) == fam {
				i := len(out)
				modes[i] = mode
				out = append(out, corev1.LoadBalancerIngress{IP: addr.String(), IPMode: &modes[i]})
			}
		}
	}
	return out
}

// hostAddresses appends to dst the addresses node is published by, for each of families: its
// ExternalIPs of that family if it has one, else its InternalIPs of that family. As the K3s
// documentation says of ServiceLB ("Networking Services", How ServiceLB Works): "When the
// ServiceLB Pod runs on a node that has an external IP configured, the node's external IP is
// populated into the Service's status.loadBalancer.ingress address list. Otherwise, the node's
// internal IP is used." K3s's code instead publishes ExternalIPs only as soon as any node has
// one, so one node's ExternalIP hides every other node; we follow the documentation.
//
// Choosing per family keeps a dual-stack node whose ExternalIP is IPv4 only published by its
// IPv6 InternalIP too, and an IPv6 ExternalIP from hiding the InternalIP an IPv4 Service needs.
// Addresses no client can reach the node at (0.0.0.0, loopback, multicast..., see
// nodeaddr.Check) are skipped as if absent, so such an ExternalIP written by another cloud
// controller falls back to the node's InternalIP. Hostnames and DNS names are not published.
func hostAddresses(dst []netip.Addr, node *corev1.Node, families []corev1.IPFamily) []netip.Addr {
	var external [2]bool // has a usable ExternalIP, by familyIndex
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeExternalIP {
			continue
		}
		if addr, ok := publishable(a.Address, families); ok {
			external[familyIndex(addr)] = true
		}
	}
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeExternalIP && a.Type != corev1.NodeInternalIP {
			continue
		}
		addr, ok := publishable(a.Address, families)
		if ok && (a.Type == corev1.NodeExternalIP) == external[familyIndex(addr)] {
			dst = append(dst, addr)
		}
	}
	return dst
}

// publishable parses a node address and reports whether it may be published for a Service of
// families: an IP of one of them that nodeaddr.Check accepts.
func publishable(s string, families []corev1.IPFamily) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(s)
	if err != nil || nodeaddr.Check(addr) != nil {
		return netip.Addr{}, false
	}
	addr = addr.Unmap()
	return addr, slices.Contains(families, addrFamily(addr))
}

// familyIndex is 0 for IPv4 and 1 for IPv6 (addr is unmapped).
func familyIndex(addr netip.Addr) int {
	if addr.Is4() {
		return 0
	}
	return 1
}

// podReady reports whether pod's Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodesWithReadyEndpoints returns the nodes that have a ready Pod endpoint of svc:
// endpoints of EndpointSlices in the Service's namespace labelled kubernetes.io/service-name
// with its name, whose targetRef is a Pod. "ready ... nil should be interpreted as true"
// (EndpointConditions API); serving and terminating endpoints are not ready.
func nodesWithReadyEndpoints(svc *corev1.Service, eps []*discoveryv1.EndpointSlice) map[string]bool {
	out := map[string]bool{}
	for _, es := range eps {
		if es.Namespace != svc.Namespace || es.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		for _, ep := range es.Endpoints {
			if ep.NodeName == nil || ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			out[*ep.NodeName] = true
		}
	}
	return out
}

// ingressIPMode is the ipMode of svc's ingress entries: the Service's ipmode annotation when it
// says "vip" or "proxy" (any case), else the controller's default, else VIP. K3s never sets it
// (its ServiceLB publishes IPs only); Proxy keeps kube-proxy in IPVS mode from binding the node addresses on
// kube-ipvs0 and short-circuiting the LB.
func ingressIPMode(svc *corev1.Service, defaultMode corev1.LoadBalancerIPMode, keys Keys) corev1.LoadBalancerIPMode {
	switch strings.ToLower(strings.TrimSpace(svc.Annotations[keys.IPMode])) {
	case "proxy":
		return corev1.LoadBalancerIPModeProxy
	case "vip":
		return corev1.LoadBalancerIPModeVIP
	}
	if defaultMode == "" {
		return corev1.LoadBalancerIPModeVIP
	}
	return defaultMode
}

// ingressEqual compares two ingress lists by value, in order. K3s compares ipMode pointers,
// which never match a decoded object, so it re-patches and re-emits an Event on every sync
// (a K3s ServiceLB bug we do not copy). An unset ipMode next to an IP means VIP, the API server's default, so a
// cluster that drops the field (LoadBalancerIPMode gate off) does not loop either.
func ingressEqual(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname &&
			effectiveIPMode(x) == effectiveIPMode(y) &&
			slices.EqualFunc(x.Ports, y.Ports, portStatusEqual)
	})
}

func effectiveIPMode(in corev1.LoadBalancerIngress) corev1.LoadBalancerIPMode {
	if in.IPMode != nil {
		return *in.IPMode
	}
	if in.IP != "" {
		return corev1.LoadBalancerIPModeVIP
	}
	return ""
}

func portStatusEqual(x, y corev1.PortStatus) bool {
	if x.Port != y.Port || x.Protocol != y.Protocol || (x.Error == nil) != (y.Error == nil) {
		return false
	}
	return x.Error == nil || *x.Error == *y.Error
}

// ingressGrows reports whether updated keeps every address of old and adds some: only such a
// change may wait for more LB pods, since a removed address should stop drawing traffic now.
func ingressGrows(old, updated []corev1.LoadBalancerIngress) bool {
	if len(updated) <= len(old) {
		return false
	}
	have := make(map[string]bool, len(updated))
	for _, a := range ingressAddresses(updated) {
		have[a] = true
	}
	for _, a := range ingressAddresses(old) {
		if !have[a] {
			return false
		}
	}
	return true
}

// podsSettling returns how long until every LB pod still on its way to Ready has waited its
// window, or 0 when none has time left. A pod on its way is not ready, not being deleted and
// not finished. One bound to a node is being started by its kubelet (image pull included) and
// gets the bound window; one the scheduler has not placed after the unbound window is taken to
// be stuck (no node can run it) and waited for no longer.
func podsSettling(pods []*corev1.Pod, now time.Time, unbound, bound time.Duration) time.Duration {
	var wait time.Duration
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || podReady(pod) ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		window := unbound
		if pod.Spec.NodeName != "" {
			window = bound
		}
		wait = max(wait, pod.CreationTimestamp.Add(window).Sub(now))
	}
	return wait
}

// ingressEvent is the Event K3s emits after writing a new ingress list: Warning
// UnAvailableLoadBalancer when it is empty, else Normal UpdatedLoadBalancer listing the old
// and new addresses. A controller adds the placement summary to the Warning when it has one.
//
// When the addresses stay and only their ipMode changes (the ipmode annotation or
// Options.IPMode), the message names the ipModes instead: "new IPs: [a] -> [a]" would report
// a change without showing one. K3s never sets ipMode, so it has no such message.
func ingressEvent(old, updated []corev1.LoadBalancerIngress) (eventType, reason, message string) {
	if len(updated) == 0 {
		return corev1.EventTypeWarning, ReasonUnAvailableLoadBalancer, messageUnAvailableLoadBalancer
	}
	oldAddrs, newAddrs := ingressAddresses(old), ingressAddresses(updated)
	oldModes, newModes := ingressIPModes(old), ingressIPModes(updated)
	if slices.Equal(oldAddrs, newAddrs) && oldModes != newModes {
		return corev1.EventTypeNormal, ReasonUpdatedLoadBalancer, fmt.Sprintf(messageUpdatedIPMode, newAddrs, oldModes, newModes)
	}
	return corev1.EventTypeNormal, ReasonUpdatedLoadBalancer, fmt.Sprintf(messageUpdatedLoadBalancer, oldAddrs, newAddrs)
}

// ingressIPModes lists the distinct ipModes of ing's entries in order, an unset one as VIP
// (the API server's default), joined with commas: "Proxy", or "VIP,Proxy" for a mixed list.
func ingressIPModes(ing []corev1.LoadBalancerIngress) string {
	var modes []string
	for _, in := range ing {
		if m := string(effectiveIPMode(in)); m != "" && !slices.Contains(modes, m) {
			modes = append(modes, m)
		}
	}
	return strings.Join(modes, ",")
}

// ingressAddresses lists each entry's IP, or its hostname when it has no IP.
func ingressAddresses(ing []corev1.LoadBalancerIngress) []string {
	out := make([]string, len(ing))
	for i, in := range ing {
		out[i] = in.IP
		if out[i] == "" {
			out[i] = in.Hostname
		}
	}
	return out
}

// daemonSetFilling returns how long to wait for LB pods the DaemonSet controller has yet to
// create: while the DaemonSet's status wants more pods than exist, until window after the
// newest pod (or the DaemonSet, before any pod) was created. Creating thousands of pods takes
// the DaemonSet controller a while, and publishing each batch would be a status write and an
// Event; a controller that stopped creating for window is not waited for. A status the
// DaemonSet controller has not computed for the current spec says nothing.
func daemonSetFilling(ds *appsv1.DaemonSet, pods []*corev1.Pod, now time.Time, window time.Duration) time.Duration {
	if ds.Status.ObservedGeneration < ds.Generation {
		return 0
	}
	existing, newest := 0, ds.CreationTimestamp.Time
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		existing++
		if pod.CreationTimestamp.After(newest) {
			newest = pod.CreationTimestamp.Time
		}
	}
	if int(ds.Status.DesiredNumberScheduled) <= existing {
		return 0
	}
	return max(0, newest.Add(window).Sub(now))
}
