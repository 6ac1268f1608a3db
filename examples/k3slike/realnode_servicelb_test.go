package main

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/nodecluster"
	"github.com/k3snet/k3snet/servicelb"
)

// lbBackends are the Services' backends: echo, one pod on each of the first three nodes, which
// also answers UDP on 5353, and solo, one pod on agent-1 (until a test moves it). /hostname
// tells a client which one answered.
const lbBackends = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 3
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: echo}}}
      containers:
      - name: echo
        image: ` + images.TestServerImage + `
        imagePullPolicy: Never
        args: [serve, --http-port, "8080", --udp-port, "5353"]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: solo}
spec:
  replicas: 1
  selector: {matchLabels: {app: solo}}
  template:
    metadata: {labels: {app: solo}}
    spec:
      nodeSelector: {kubernetes.io/hostname: agent-1}
      containers:
      - name: solo
        image: ` + images.TestServerImage + `
        imagePullPolicy: Never
        args: [serve, --http-port, "8080"]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
`

// lbService is a LoadBalancer Service named name to the backends labelled app=app, with TCP
// port to their port 8080 unless port is 0; meta adds entries to the metadata mapping (such as
// "labels: {a: b}"), extra adds lines under spec.
func lbService(name, app string, port uint16, meta string, extra ...string) string {
	spec := ""
	if port != 0 {
		spec = fmt.Sprintf("  ports: [{port: %d, targetPort: 8080}]\n", port)
	}
	for _, e := range extra {
		spec += "  " + e + "\n"
	}
	if meta != "" {
		meta = ", " + meta
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %s%s}
spec:
  type: LoadBalancer
  selector: {app: %s}
%s`, name, meta, app, spec)
}

// The Services' ports: each Service has its own, but first and second share one on purpose.
const (
	portEcho   = 8081
	portRanged = 8084
	portSolo   = 8085
	portShared = 8086
	portPool   = 8087
)

// TestRealNodeServiceLB serves LoadBalancer Services with ServiceLB on real nodes (a dual-stack
// server and two agents; a third agent joins with pool labels) and checks each with real
// connections from two clients on the nodes' LAN. Each subtest names what it proves; they run
// in order on one cluster, and the allow-list one, which changes where every Service is
// served, runs last.
func TestRealNodeServiceLB(t *testing.T) {
	// Traefik's Service would hold ports 80 and 443 on every node; the Services here bring their own.
	c := nodecluster.Start(t, nodecluster.Options{Agents: 2, DualStack: true, ServerArgs: []string{"--disable=traefik"}})
	lb := newLBCluster(t, c)
	c.Apply(t, lbBackends)
	nodecluster.Eventually(t, 3*time.Minute, "echo runs on every node and solo on agent-1", func() bool {
		return lb.readyBackends(t, "echo") == "agent-1,agent-2,server" && lb.readyBackends(t, "solo") == "agent-1"
	})
	server, agent1, agent2 := c.Server, c.Agents[0], c.Agents[1]
	all := []*nodecluster.Node{server, agent1, agent2}

	t.Run("a dual-stack Service is published and served on every node's two addresses, through the node's LB pod with ipMode Proxy", func(t *testing.T) {
		// TCP and UDP on one port: an LB pod with a forwarder container for each.
		c.Apply(t, lbService("echo", "echo", 0, "", "ipFamilyPolicy: RequireDualStack",
			fmt.Sprintf("ports: [{name: http, port: %d, targetPort: 8080}, {name: udp, port: %[1]d, protocol: UDP, targetPort: 5353}]", portEcho)))
		lb.waitServed(t, "echo", corev1.LoadBalancerIPModeVIP, dualStack, all...)
		// ipMode VIP, K3s's behaviour: kube-proxy takes the node addresses in the status as
		// load-balancer IPs, so its rules answer before the CNI's hostPort DNAT is reached.
		for _, n := range all {
			for _, ip := range nodeAddrs(n, dualStack) {
				lb.eventuallyAnswers(t, lb.lan, ip, portEcho, "/hostname", func(body string) bool { return strings.HasPrefix(body, "echo-") })
				lb.eventuallyAnswersUDP(t, lb.lan, ip, portEcho, func(backend string, _ netip.Addr) bool { return strings.HasPrefix(backend, "echo-") })
			}
		}

		// ipMode Proxy leaves the node addresses to the LB pods: the CNI's portmap DNATs
		// node:8081 to the node's LB pod, whose forwarder DNATs it to the ClusterIP and
		// masquerades it, and kube-proxy takes the ClusterIP to a backend, which therefore
		// sees the LB pod of the node the client connected to as its peer.
		c.Kubectl(t, "annotate", "service", "echo", lb.keys.IPMode+"=proxy")
		lb.waitServed(t, "echo", corev1.LoadBalancerIPModeProxy, dualStack, all...)
		nodecluster.Eventually(t, time.Minute, "an Event names the new ipMode", func() bool {
			return slices.ContainsFunc(lb.events(t, "echo", corev1.EventTypeNormal, servicelb.ReasonUpdatedLoadBalancer),
				func(msg string) bool { return strings.HasSuffix(msg, "with new ipMode: VIP -> Proxy") })
		})
		lbPods := lb.lbPods(t, "echo")
		for _, n := range all {
			var names []string
			for _, ctr := range lbPods[n.Name].Spec.Containers {
				names = append(names, ctr.Name)
			}
			assert.Equal(t, []string{fmt.Sprintf("lb-tcp-%d", portEcho), fmt.Sprintf("lb-udp-%d", portEcho)}, names, "one forwarder per Service port in %s's LB pod", n.Name)
		}
		for _, n := range all {
			for _, ip := range nodeAddrs(n, dualStack) {
				want := podAddr(lbPods[n.Name], ip.Is6())
				lb.eventuallyAnswers(t, lb.lan, ip, portEcho, "/clientip", func(body string) bool { return peerAddr(body) == want })
				body, err := lbGet(lb.lan, ip, portEcho, "/hostname")
				require.NoError(t, err)
				assert.True(t, strings.HasPrefix(body, "echo-"), "a backend answers through %s's LB pod: %q", n.Name, body)
				lb.eventuallyAnswersUDP(t, lb.lan, ip, portEcho, func(backend string, peer netip.Addr) bool {
					return strings.HasPrefix(backend, "echo-") && peer == want
				})
			}
		}

		// The forwarder's rules in the server's LB pod point at the Service's two ClusterIPs.
		svc := lb.service(t, "echo")
		pod := lbPods[server.Name]
		podNS := c.PodNamespace(t, netip.MustParseAddr(pod.Status.PodIP))
		rules4, err := podNS.Exec(t.Context(), "iptables-save", "-t", "nat")
		require.NoError(t, err)
		rules6, err := podNS.Exec(t.Context(), "ip6tables-save", "-t", "nat")
		require.NoError(t, err)
		require.Len(t, svc.Spec.ClusterIPs, 2)
		assert.Contains(t, rules4, "-j DNAT --to-destination "+netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIPs[0]), portEcho).String())
		assert.Contains(t, rules6, "-j DNAT --to-destination "+netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIPs[1]), portEcho).String())
	})

	t.Run("loadBalancerSourceRanges let one LAN client in and keep another out, in the LB pod (ipMode Proxy) and in kube-proxy (VIP)", func(t *testing.T) {
		lanRanges := fmt.Sprintf("loadBalancerSourceRanges: [%q, %q]",
			netip.PrefixFrom(lb.lanIP, 32).String(), netip.PrefixFrom(lb.lanIP6, 128).String())
		c.Apply(t, lbService("ranged", "echo", portRanged, "annotations: {"+lb.keys.IPMode+": proxy}",
			"ipFamilyPolicy: RequireDualStack", lanRanges))
		lb.waitServed(t, "ranged", corev1.LoadBalancerIPModeProxy, dualStack, all...)
		lbPods := lb.lbPods(t, "ranged")
		var addrs []netip.Addr
		for _, n := range all {
			for _, ip := range nodeAddrs(n, dualStack) {
				addrs = append(addrs, ip)
				want := podAddr(lbPods[n.Name], ip.Is6())
				lb.eventuallyAnswers(t, lb.lan, ip, portRanged, "/clientip", func(body string) bool { return peerAddr(body) == want })
			}
		}
		// The forwarder accepts the ranges before it DNATs, so rules that let the first client
		// through already keep the other out.
		lb.assertRefused(t, lb.other, addrs, portRanged)
		for _, ip := range addrs {
			_, err := lbGet(lb.other, ip, portEcho, "/hostname")
			assert.NoError(t, err, "the other client reaches echo on %s: only the ranges keep it out", ip)
		}

		c.Kubectl(t, "annotate", "service", "ranged", lb.keys.IPMode+"-")
		lb.waitServed(t, "ranged", corev1.LoadBalancerIPModeVIP, dualStack, all...)
		for _, n := range all {
			for _, ip := range nodeAddrs(n, dualStack) {
				lbPod := podAddr(lbPods[n.Name], ip.Is6())
				lb.eventuallyAnswers(t, lb.lan, ip, portRanged, "/clientip", func(body string) bool {
					return peerAddr(body).IsValid() && peerAddr(body) != lbPod
				})
			}
		}
		lb.assertRefused(t, lb.other, addrs, portRanged)
		c.Kubectl(t, "delete", "service", "ranged")
	})

	t.Run("externalTrafficPolicy Local publishes only the node with a ready local endpoint, where the backend sees the client's own address", func(t *testing.T) {
		c.Apply(t, lbService("solo", "solo", portSolo, "", "ipFamilyPolicy: RequireDualStack", "externalTrafficPolicy: Local"))
		lb.waitServed(t, "solo", corev1.LoadBalancerIPModeVIP, dualStack, agent1)
		lb.waitLBPods(t, "solo", all...)
		for _, ip := range nodeAddrs(agent1, dualStack) {
			want := lb.lanIP
			if ip.Is6() {
				want = lb.lanIP6
			}
			lb.eventuallyAnswers(t, lb.lan, ip, portSolo, "/clientip", func(body string) bool { return peerAddr(body) == want })
		}
		// The nodes without a local endpoint are not published, but their LB pods still run
		// and forward to their node's port from the pod's address, which kube-proxy takes for
		// cluster traffic and sends to agent-1 (k3s-io/k3s#9592, #11077). K3s does the same;
		// it is not asserted either way here.

		// The endpoint moves to agent-2, and the status with it.
		c.Kubectl(t, "patch", "deployment", "solo", "--type=merge",
			"-p", `{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/hostname":"agent-2"}}}}}`)
		lb.waitServed(t, "solo", corev1.LoadBalancerIPModeVIP, dualStack, agent2)
		for _, ip := range nodeAddrs(agent2, dualStack) {
			want := lb.lanIP
			if ip.Is6() {
				want = lb.lanIP6
			}
			lb.eventuallyAnswers(t, lb.lan, ip, portSolo, "/clientip", func(body string) bool { return peerAddr(body) == want })
		}

		// With ipMode Proxy the LB pod carries the traffic: it forwards to its node's port on
		// the node's address of the same family (status.hostIPs), from its own address.
		c.Kubectl(t, "annotate", "service", "solo", lb.keys.IPMode+"=proxy")
		lb.waitServed(t, "solo", corev1.LoadBalancerIPModeProxy, dualStack, agent2)
		lbPod := lb.lbPods(t, "solo")[agent2.Name]
		for _, ip := range nodeAddrs(agent2, dualStack) {
			want := podAddr(lbPod, ip.Is6())
			lb.eventuallyAnswers(t, lb.lan, ip, portSolo, "/clientip", func(body string) bool { return peerAddr(body) == want })
		}
		c.Kubectl(t, "delete", "service", "solo")
	})

	t.Run("a second Service on a taken port stays Pending with a Warning saying why, and is served once the first is deleted", func(t *testing.T) {
		// Single-stack Services in a dual-stack cluster: only their family is published.
		c.Apply(t, lbService("first", "echo", portShared, ""))
		lb.waitServed(t, "first", corev1.LoadBalancerIPModeVIP, singleStack, all...)
		c.Apply(t, lbService("second", "solo", portShared, ""))
		var warnings []string
		nodecluster.Eventually(t, 2*time.Minute, "second's LB pods are unschedulable and a Warning says why", func() bool {
			pods, err := lb.client.CoreV1().Pods(servicelb.DefaultNamespace).List(t.Context(), lb.lbSelector("second"))
			if err != nil || len(pods.Items) != len(all) {
				return false
			}
			for _, p := range pods.Items {
				if p.Spec.NodeName != "" || !unschedulable(&p) {
					return false
				}
			}
			warnings = lb.events(t, "second", corev1.EventTypeWarning, servicelb.ReasonUnAvailableLoadBalancer)
			return len(warnings) > 0
		})
		why := fmt.Sprintf("port %d/TCP taken by %s/svclb-first-", portShared, servicelb.DefaultNamespace)
		assert.True(t, slices.ContainsFunc(warnings, func(msg string) bool { return strings.Contains(msg, why) }),
			"a Warning names the port and who holds it: %q", warnings)
		assert.Empty(t, lb.service(t, "second").Status.LoadBalancer.Ingress, "second stays <pending>")
		for _, n := range all {
			lb.eventuallyAnswers(t, lb.lan, n.IP, portShared, "/hostname", func(body string) bool { return strings.HasPrefix(body, "echo-") })
		}

		c.Kubectl(t, "delete", "service", "first")
		lb.waitServed(t, "second", corev1.LoadBalancerIPModeVIP, singleStack, all...)
		for _, n := range all {
			lb.eventuallyAnswers(t, lb.lan, n.IP, portShared, "/hostname", func(body string) bool { return strings.HasPrefix(body, "solo-") })
		}
		c.Kubectl(t, "delete", "service", "second")
	})

	t.Run("enablelb allow-list mode and lbpool pools decide which nodes answer", func(t *testing.T) {
		enableLB := lb.keys.EnableLB + "=true"
		c.Kubectl(t, "label", "node", agent2.Name, enableLB)
		lb.waitServed(t, "echo", corev1.LoadBalancerIPModeProxy, dualStack, agent2)
		for _, ip := range nodeAddrs(agent2, dualStack) {
			lb.eventuallyAnswers(t, lb.lan, ip, portEcho, "/hostname", func(body string) bool { return strings.HasPrefix(body, "echo-") })
		}
		for _, n := range []*nodecluster.Node{server, agent1} {
			for _, ip := range nodeAddrs(n, dualStack) {
				lb.eventuallyRefused(t, lb.lan, ip, portEcho)
			}
		}

		// A node that joins with the labels, as `k3s agent --node-label` does, is in the
		// allow-list and in pool blue from its start.
		agent3 := c.AddAgent(t, "agent-3", "--node-label="+enableLB, "--node-label="+lb.keys.LBPool+"=blue")
		lb.waitServed(t, "echo", corev1.LoadBalancerIPModeProxy, dualStack, agent2, agent3)
		c.Apply(t, lbService("blue", "echo", portPool, "labels: {"+lb.keys.LBPool+": blue}", "ipFamilyPolicy: RequireDualStack"))
		lb.waitServed(t, "blue", corev1.LoadBalancerIPModeVIP, dualStack, agent3)
		for _, ip := range nodeAddrs(agent3, dualStack) {
			lb.eventuallyAnswers(t, lb.lan, ip, portPool, "/hostname", func(body string) bool { return strings.HasPrefix(body, "echo-") })
		}
		for _, n := range []*nodecluster.Node{server, agent1, agent2} {
			lb.eventuallyRefused(t, lb.lan, n.IP, portPool)
		}

		// The per-pool label puts agent-2 in pool blue as well (K3s PR #14547).
		c.Kubectl(t, "label", "node", agent2.Name, lb.keys.PoolLabel("blue")+"=true")
		lb.waitServed(t, "blue", corev1.LoadBalancerIPModeVIP, dualStack, agent2, agent3)
		lb.eventuallyAnswers(t, lb.lan, agent2.IP6, portPool, "/hostname", func(body string) bool { return strings.HasPrefix(body, "echo-") })

		// Without any enablelb label the cluster leaves allow-list mode: echo is back on every
		// node (K3s keeps the allow-list, k3s-io/k3s#14625), and so is blue: as in K3s, pools
		// only narrow the allow-list.
		c.Kubectl(t, "label", "node", agent2.Name, agent3.Name, lb.keys.EnableLB+"-")
		everyNode := append(slices.Clone(all), agent3)
		lb.waitServed(t, "echo", corev1.LoadBalancerIPModeProxy, dualStack, everyNode...)
		for _, n := range everyNode {
			lb.eventuallyAnswers(t, lb.lan, n.IP, portEcho, "/hostname", func(body string) bool { return strings.HasPrefix(body, "echo-") })
		}
		lb.waitServed(t, "blue", corev1.LoadBalancerIPModeVIP, dualStack, everyNode...)
	})
}

// Whether a Service is published with both families or with IPv4 alone.
const (
	singleStack = false
	dualStack   = true
)

// lbCluster is a cluster with two LAN clients: the source-range test lets in lan and keeps
// other out.
type lbCluster struct {
	client kubernetes.Interface
	keys   servicelb.Keys

	lan, other    *netns.Namespace
	lanIP, lanIP6 netip.Addr
}

func newLBCluster(t *testing.T, c *nodecluster.Cluster) *lbCluster {
	lb := &lbCluster{client: c.Client(t), keys: servicelb.NewKeys(servicelb.DefaultProgram)}
	lb.lan, lb.lanIP = c.AddHost(t, "lana")
	lb.lanIP6 = nodecluster.IPv6Of(lb.lanIP)
	lb.other, _ = c.AddHost(t, "lanb")
	return lb
}

// readyBackends lists the nodes that run a ready pod labelled app=app, sorted and joined.
func (lb *lbCluster) readyBackends(t *testing.T, app string) string {
	pods, err := lb.client.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return ""
	}
	var nodes []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			nodes = append(nodes, p.Spec.NodeName)
		}
	}
	slices.Sort(nodes)
	return strings.Join(nodes, ",")
}

func (lb *lbCluster) service(t *testing.T, name string) *corev1.Service {
	t.Helper()
	svc, err := lb.client.CoreV1().Services("default").Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return svc
}

// lbSelector selects the LB pods of the Service name in the default namespace.
func (lb *lbCluster) lbSelector(name string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: lb.keys.SvcName + "=" + name + "," + lb.keys.SvcNamespace + "=default"}
}

// lbPods returns the Service's ready LB pods by node name.
func (lb *lbCluster) lbPods(t *testing.T, name string) map[string]corev1.Pod {
	t.Helper()
	pods, err := lb.client.CoreV1().Pods(servicelb.DefaultNamespace).List(t.Context(), lb.lbSelector(name))
	require.NoError(t, err)
	out := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Spec.NodeName != "" && podReady(&p) {
			out[p.Spec.NodeName] = p
		}
	}
	return out
}

// waitLBPods waits until the Service's ready LB pods run on exactly nodes, one on each.
func (lb *lbCluster) waitLBPods(t *testing.T, name string, nodes ...*nodecluster.Node) {
	t.Helper()
	want := nodeNames(nodes)
	nodecluster.Eventually(t, 3*time.Minute, name+"'s LB pods run on "+strings.Join(want, ", "), func() bool {
		pods, err := lb.client.CoreV1().Pods(servicelb.DefaultNamespace).List(t.Context(), lb.lbSelector(name))
		if err != nil {
			return false
		}
		var got []string
		for _, p := range pods.Items {
			switch {
			case p.DeletionTimestamp != nil:
				continue // on its way out
			case p.Spec.NodeName == "" || !podReady(&p):
				return false // still to be placed or started
			}
			got = append(got, p.Spec.NodeName)
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}

// waitServed waits until the Service's status publishes exactly the addresses of nodes (IPv4
// first, then IPv6 when dual), all with ipMode mode. For a Service with externalTrafficPolicy
// Cluster these must also be the nodes that run its ready LB pods: the ones that serve it.
func (lb *lbCluster) waitServed(t *testing.T, name string, mode corev1.LoadBalancerIPMode, dual bool, nodes ...*nodecluster.Node) {
	t.Helper()
	want := ingressOf(dual, nodes...)
	var got []string
	nodecluster.Eventually(t, 3*time.Minute, fmt.Sprintf("%s's status publishes %v (ipMode %s)", name, want, mode), func() bool {
		svc, err := lb.client.CoreV1().Services("default").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		got = got[:0]
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IPMode == nil || *in.IPMode != mode {
				return false
			}
			got = append(got, in.IP)
		}
		return slices.Equal(got, want)
	})
	if lb.service(t, name).Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		lb.waitLBPods(t, name, nodes...)
	}
}

// events returns the messages of the Service's Events of type typ with reason.
func (lb *lbCluster) events(t *testing.T, name, typ, reason string) []string {
	events, err := lb.client.CoreV1().Events("default").List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range events.Items {
		if e.Type == typ && e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

// eventuallyAnswers waits until a GET of path on ip:port from ns answers a body ok accepts.
func (lb *lbCluster) eventuallyAnswers(t *testing.T, ns *netns.Namespace, ip netip.Addr, port uint16, path string, ok func(body string) bool) {
	t.Helper()
	var last string
	what := fmt.Sprintf("GET %s%s from %s answers as expected", netip.AddrPortFrom(ip, port), path, ns)
	defer func() {
		if t.Failed() {
			t.Logf("last answer to %s: %s", what, last)
		}
	}()
	nodecluster.Eventually(t, 2*time.Minute, what, func() bool {
		body, err := lbGet(ns, ip, port, path)
		last = fmt.Sprintf("%q (err %v)", body, err)
		return err == nil && ok(body)
	})
}

// eventuallyAnswersUDP waits until a datagram to ip:port from ns is answered by a backend and
// ok accepts the answer: the backend's name and the peer address it saw.
func (lb *lbCluster) eventuallyAnswersUDP(t *testing.T, ns *netns.Namespace, ip netip.Addr, port uint16, ok func(backend string, peer netip.Addr) bool) {
	t.Helper()
	var last string
	what := fmt.Sprintf("UDP %s from %s answers as expected", netip.AddrPortFrom(ip, port), ns)
	defer func() {
		if t.Failed() {
			t.Logf("last answer to %s: %s", what, last)
		}
	}()
	nodecluster.Eventually(t, 2*time.Minute, what, func() bool {
		answer, err := lbUDP(ns, netip.AddrPortFrom(ip, port))
		last = fmt.Sprintf("%q (err %v)", answer, err)
		backend, peer, _ := strings.Cut(answer, " ")
		return err == nil && ok(backend, peerAddr(peer))
	})
}

// lbUDP sends one datagram to addr from ns and returns the answer, which the test server
// writes as "<hostname> <peer ip:port>".
func lbUDP(ns *netns.Namespace, addr netip.AddrPort) (string, error) {
	var answer string
	err := ns.Do(func() error {
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
			return err
		}
		if _, err := conn.Write([]byte("hello")); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		answer = strings.TrimSpace(string(buf[:n]))
		return err
	})
	return answer, err
}

// eventuallyRefused waits until ip:port no longer answers ns.
func (lb *lbCluster) eventuallyRefused(t *testing.T, ns *netns.Namespace, ip netip.Addr, port uint16) {
	t.Helper()
	nodecluster.Eventually(t, 2*time.Minute, fmt.Sprintf("%s no longer answers %s", netip.AddrPortFrom(ip, port), ns), func() bool {
		_, err := lbGet(ns, ip, port, "/hostname")
		return err != nil
	})
}

// assertRefused checks, on every address at once, that ns gets no answer on port.
func (lb *lbCluster) assertRefused(t *testing.T, ns *netns.Namespace, addrs []netip.Addr, port uint16) {
	t.Helper()
	var wg sync.WaitGroup
	answers := make([]string, len(addrs))
	for i, ip := range addrs {
		wg.Go(func() {
			if body, err := lbGet(ns, ip, port, "/clientip"); err == nil {
				answers[i] = body
			}
		})
	}
	wg.Wait()
	for i, ip := range addrs {
		assert.Empty(t, answers[i], "%s must not answer %s", netip.AddrPortFrom(ip, port), ns)
	}
}

// lbGet GETs path on ip:port from ns (an IPv6 address in brackets) and returns the trimmed body.
func lbGet(ns *netns.Namespace, ip netip.Addr, port uint16, path string) (string, error) {
	body, err := nodecluster.HTTPGet(ns, "http://"+netip.AddrPortFrom(ip, port).String()+path)
	return strings.TrimSpace(body), err
}

// peerAddr is the address in a /clientip answer ("10.42.0.3:47968", "[fd00:42::3]:36052").
func peerAddr(body string) netip.Addr {
	ap, err := netip.ParseAddrPort(body)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// podAddr is the pod's address of one family.
func podAddr(p corev1.Pod, ipv6 bool) netip.Addr {
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil && a.Is6() == ipv6 {
			return a
		}
	}
	return netip.Addr{}
}

// nodeAddrs are the node's LAN addresses the Service publishes: IPv4, and IPv6 when dual.
func nodeAddrs(n *nodecluster.Node, dual bool) []netip.Addr {
	if dual {
		return []netip.Addr{n.IP, n.IP6}
	}
	return []netip.Addr{n.IP}
}

// ingressOf is the status the controller writes for nodes: IPv4 addresses in numeric order,
// then IPv6 ones when dual (spec.ipFamilies order, IPv4 first in these Services).
func ingressOf(dual bool, nodes ...*nodecluster.Node) []string {
	var v4, v6 []netip.Addr
	for _, n := range nodes {
		v4 = append(v4, n.IP)
		if dual {
			v6 = append(v6, n.IP6)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	var out []string
	for _, a := range append(v4, v6...) {
		out = append(out, a.String())
	}
	return out
}

func nodeNames(nodes []*nodecluster.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	slices.Sort(out)
	return out
}

// unschedulable reports whether the scheduler found no node for p.
func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}
