package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/nodecluster"
	"github.com/k3snet/k3snet/netpol"
	"github.com/k3snet/k3snet/netpol/netpoltest"
	"github.com/k3snet/k3snet/netpol/reference"
)

// NetworkPolicy on real nodes: real pods (the pause image, declaring the model's container
// ports) spread over the nodes, each node's rules written by its own k3slike. The test serves
// TCP and UDP echo (SCTP where the kernel has it) on ports 80 and 81 inside every pod's network
// namespace and probes from inside the source pod's, so every connection crosses the real pod
// network: the source node's bridge and FORWARD chain, the route to the destination node, and
// the destination node's. Each observed matrix must converge to the reference evaluator's
// (reference.Reachability) over the objects the API server holds.

const (
	// probeTimeout bounds one probe. An allowed probe ends with its echo, a refused one with
	// the REJECT's ICMP error; a probe whose error the kernel's ICMP rate limit held back, and
	// a refused IPv6 TCP connect (honoured only after the first SYN retransmission), wait
	// longer.
	probeTimeout = 2 * time.Second
	// convergeTimeout bounds the wait for a matrix after a change of policies or labels.
	convergeTimeout = 90 * time.Second
	// probesAtOnce bounds the probes in flight; each holds an OS thread inside a pod.
	probesAtOnce = 48
	// proberPerAddr is how many probers try each address of a starting pod at once.
	proberPerAddr = 4
)

// testPod is a real pod the test serves echo in and probes from.
type testPod struct {
	namespace, name string
	// ns is the pod's network namespace; ips its addresses, primary family first.
	ns  *netns.Namespace
	ips []netip.Addr
}

// key names the pod as the matrices do.
func (p testPod) key() string { return p.namespace + "/" + p.name }

// addr returns the pod's address of family.
func (p testPod) addr(family corev1.IPFamily) (netip.Addr, bool) {
	for _, ip := range p.ips {
		if ip.Is6() == (family == corev1.IPv6Protocol) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// podMatrix probes between real pods and computes what the evaluator expects of them.
type podMatrix struct {
	c      *nodecluster.Cluster
	client kubernetes.Interface
	// pods are the matrix's rows and columns, in order.
	pods []testPod
	// families are the address families of the cluster.
	families []corev1.IPFamily
	// sctp says whether this kernel has SCTP sockets.
	sctp bool
	// namespaces are the namespaces the test created, whose policies it manages.
	namespaces []string
}

// newPodMatrix returns a matrix over no pod yet.
func newPodMatrix(t *testing.T, c *nodecluster.Cluster, families ...corev1.IPFamily) *podMatrix {
	t.Helper()
	sctp, err := netns.SCTPSupported()
	require.NoError(t, err)
	return &podMatrix{c: c, client: c.Client(t), families: families, sctp: sctp}
}

// createNamespace creates a namespace with labels.
func (pm *podMatrix) createNamespace(t *testing.T, ns *corev1.Namespace) {
	t.Helper()
	_, err := pm.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, Labels: ns.Labels}}, metav1.CreateOptions{})
	require.NoError(t, err)
	pm.namespaces = append(pm.namespaces, ns.Name)
}

// realPod turns a model pod into one a real node runs: on node, every container the pause
// image, with the model's labels and container ports.
func realPod(model *corev1.Pod, node string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: model.Namespace, Name: model.Name, Labels: maps.Clone(model.Labels)}}
	pod.Spec.NodeName = node
	pod.Spec.AutomountServiceAccountToken = new(false)
	pod.Spec.TerminationGracePeriodSeconds = new(int64(0))
	for _, c := range model.Spec.Containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c.Name, Image: images.PauseImage,
			ImagePullPolicy: corev1.PullNever, Ports: slices.Clone(c.Ports)})
	}
	return pod
}

// startPods creates pods, waits until each runs with an address of every family, and serves
// echo on ports 80 and 81 in each. The pods are returned in the order given.
func (pm *podMatrix) startPods(t *testing.T, pods ...*corev1.Pod) []testPod {
	t.Helper()
	ctx := t.Context()
	for _, pod := range pods {
		// A namespace's default ServiceAccount, which admission wants, comes a moment after it.
		nodecluster.Eventually(t, time.Minute, "pod "+pod.Namespace+"/"+pod.Name+" is created", func() bool {
			_, err := pm.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
			return err == nil || apierrors.IsAlreadyExists(err)
		})
	}
	out := make([]testPod, len(pods))
	nodecluster.Eventually(t, 4*time.Minute, "every pod runs with an address of every family", func() bool {
		for i, pod := range pods {
			got, err := pm.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil || got.Status.Phase != corev1.PodRunning || !podReady(got) || len(got.Status.PodIPs) != len(pm.families) {
				return false
			}
			out[i] = testPod{namespace: pod.Namespace, name: pod.Name}
			for _, ip := range got.Status.PodIPs {
				out[i].ips = append(out[i].ips, netip.MustParseAddr(ip.IP))
			}
		}
		return true
	})
	for i := range out {
		out[i].ns = pm.c.PodNamespace(t, out[i].ips[0])
		pm.serveEcho(t, out[i].ns)
	}
	return out
}

// serveEcho serves echo on ports 80 and 81 in ns, over TCP, UDP and SCTP where the kernel has
// it, on every address of the cluster's families.
func (pm *podMatrix) serveEcho(t *testing.T, ns *netns.Namespace) {
	t.Helper()
	wildcard := netip.IPv4Unspecified()
	if slices.Contains(pm.families, corev1.IPv6Protocol) {
		wildcard = netip.IPv6Unspecified() // a dual-stack socket
	}
	protos := []netns.Proto{netns.TCP, netns.UDP}
	if pm.sctp {
		protos = append(protos, netns.SCTP)
	}
	for _, port := range []uint16{80, 81} {
		for _, proto := range protos {
			srv, err := ns.Serve(t.Context(), proto, netip.AddrPortFrom(wildcard, port))
			require.NoError(t, err)
			t.Cleanup(func() { _ = srv.Close() })
		}
	}
}

// names returns the matrix's pods as evaluator endpoints that carry only their names.
func (pm *podMatrix) names() []reference.Endpoint {
	eps := make([]reference.Endpoint, len(pm.pods))
	for i, p := range pm.pods {
		eps[i] = reference.Endpoint{Pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: p.name}}}
	}
	return eps
}

// matrix returns a matrix of probe over the pods with the given cells; nil allows every cell.
func (pm *podMatrix) matrix(probe reference.Probe, allowed [][]bool) reference.Matrix {
	m := reference.NewMatrix(probe, pm.names())
	for i := range m.Allowed {
		for j := range m.Allowed[i] {
			m.Allowed[i][j] = allowed == nil || allowed[i][j]
		}
	}
	return m
}

// observe probes every ordered pair of distinct pods with each probe. A pod's traffic to
// itself never leaves it, so that cell is allowed without a probe. Errors that are not a
// blocked connection (an echo that does not match) are returned beside the matrices.
func (pm *podMatrix) observe(probes []reference.Probe) ([]reference.Matrix, []error) {
	out := make([]reference.Matrix, len(probes))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []error
		sem      = make(chan struct{}, probesAtOnce)
	)
	for k, probe := range probes {
		out[k] = pm.matrix(probe, nil)
		proto := netns.Proto(strings.ToLower(string(probe.Protocol)))
		if probe.Protocol == "" {
			proto = netns.TCP
		}
		for i, src := range pm.pods {
			for j, dst := range pm.pods {
				if i == j {
					continue
				}
				out[k].Allowed[i][j] = false
				addr, ok := dst.addr(probe.Family)
				if !ok {
					continue
				}
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					err := src.ns.Probe(proto, netip.AddrPortFrom(addr, uint16(probe.Port)), probeTimeout)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						out[k].Allowed[i][j] = true
					case !netns.IsBlocked(err):
						problems = append(problems, fmt.Errorf("%s -> %s %s: %w", src.key(), dst.key(), probe, err))
					}
				})
			}
		}
	}
	wg.Wait()
	return out, problems
}

// evaluate computes each probe's matrix with the reference evaluator, over the namespaces,
// policies and pods the API server holds now.
func (pm *podMatrix) evaluate(t *testing.T, probes []reference.Probe) []reference.Matrix {
	t.Helper()
	ctx := t.Context()
	nsList, err := pm.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	npList, err := pm.client.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var cluster reference.Cluster
	for i := range nsList.Items {
		cluster.Namespaces = append(cluster.Namespaces, &nsList.Items[i])
	}
	for i := range npList.Items {
		cluster.Policies = append(cluster.Policies, &npList.Items[i])
	}
	eps := make([]reference.Endpoint, len(pm.pods))
	for i, p := range pm.pods {
		pod, err := pm.client.CoreV1().Pods(p.namespace).Get(ctx, p.name, metav1.GetOptions{})
		require.NoError(t, err)
		eps[i] = reference.Endpoint{Pod: pod}
	}
	out := make([]reference.Matrix, len(probes))
	for k, probe := range probes {
		out[k], err = reference.Reachability(cluster, eps, probe)
		require.NoError(t, err)
	}
	return out
}

// converge probes until every observed matrix equals its wanted one, and reports whether it
// did; after convergeTimeout it fails t with the cells that still differ.
func (pm *podMatrix) converge(t *testing.T, what string, want []reference.Matrix) bool {
	t.Helper()
	probes := make([]reference.Probe, len(want))
	for k, m := range want {
		probes[k] = m.Probe
	}
	deadline := time.Now().Add(convergeTimeout)
	for {
		got, problems := pm.observe(probes)
		var report strings.Builder
		for k := range want {
			if diff := want[k].Diff(got[k]); len(diff) > 0 {
				fmt.Fprintf(&report, "probe %s:\n%s\nwant:\n%sgot:\n%s", probes[k], strings.Join(diff, "\n"), want[k], got[k])
			}
		}
		if report.Len() == 0 {
			return true
		}
		if time.Now().After(deadline) {
			if err := errors.Join(problems...); err != nil {
				fmt.Fprintf(&report, "probes that failed without being blocked:\n%v\n", err)
			}
			t.Errorf("%s: the real pods' matrix did not reach the evaluator's within %s:\n%s", what, convergeTimeout, report.String())
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// applyPolicies makes policies the only NetworkPolicies of the test's namespaces: kubectl
// apply creates or updates them in place, kubectl delete removes the others.
func (pm *podMatrix) applyPolicies(t *testing.T, policies []*networkingv1.NetworkPolicy) {
	t.Helper()
	keep := map[string]bool{}
	for _, np := range policies {
		keep[np.Namespace+"/"+np.Name] = true
	}
	if len(policies) > 0 {
		manifest, err := policyManifest(policies)
		require.NoError(t, err)
		pm.c.Apply(t, manifest)
	}
	existing, err := pm.client.NetworkingV1().NetworkPolicies("").List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	stale := map[string][]string{}
	for _, np := range existing.Items {
		if !keep[np.Namespace+"/"+np.Name] && slices.Contains(pm.namespaces, np.Namespace) {
			stale[np.Namespace] = append(stale[np.Namespace], np.Name)
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(stale)) {
		pm.c.Kubectl(t, append([]string{"delete", "networkpolicy", "-n", ns}, stale[ns]...)...)
	}
}

// policyManifest renders policies as one multi-document manifest for kubectl apply.
func policyManifest(policies []*networkingv1.NetworkPolicy) (string, error) {
	docs := make([]string, len(policies))
	for i, np := range policies {
		np = np.DeepCopy()
		np.TypeMeta = metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "NetworkPolicy"}
		b, err := yaml.Marshal(np)
		if err != nil {
			return "", fmt.Errorf("rendering NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
		docs[i] = string(b)
	}
	return strings.Join(docs, "---\n"), nil
}

// labelArgs returns kubectl label's arguments that turn labels current into desired:
// "key=value" for each key to set, "key-" for each to remove, sorted by key.
func labelArgs(current, desired map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(desired)) {
		if v, ok := current[k]; !ok || v != desired[k] {
			out = append(out, k+"="+desired[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(current)) {
		if _, ok := desired[k]; !ok {
			out = append(out, k+"-")
		}
	}
	return out
}

// commonPrefix returns the longest prefix holding every address of addrs, all of one family.
func commonPrefix(addrs []netip.Addr) netip.Prefix {
	if len(addrs) == 0 {
		return netip.Prefix{}
	}
	bits := addrs[0].BitLen()
	for _, a := range addrs[1:] {
		for !netip.PrefixFrom(addrs[0], bits).Masked().Contains(a) {
			bits--
		}
	}
	return netip.PrefixFrom(addrs[0], bits).Masked()
}

// modelRun replays netpoltest cases on the model's real pods.
type modelRun struct {
	*podMatrix
	// lastProbes are the probes of the last case, for the open matrix after a reset.
	lastProbes []reference.Probe
}

// startModel creates the model's namespaces and pods, pod (n, p) (namespace n and pod p of x,
// y, z and a, b, c, from 0) on node (n+p) mod the number of nodes, so every namespace has a
// pod on every node of three and every pair of nodes talks; then it waits until every
// connection passes.
func startModel(t *testing.T, c *nodecluster.Cluster, families ...corev1.IPFamily) *modelRun {
	t.Helper()
	pm := newPodMatrix(t, c, families...)
	nodes := c.Nodes()
	var pods []*corev1.Pod
	for n, ns := range netpoltest.Namespaces() {
		pm.createNamespace(t, netpoltest.Namespace(ns))
		for p, name := range netpoltest.PodNames() {
			pods = append(pods, realPod(netpoltest.Pod(ns, name), nodes[(n+p)%len(nodes)].Name))
		}
	}
	pm.pods = pm.startPods(t, pods...)
	m := &modelRun{podMatrix: pm}
	var open []reference.Matrix
	for _, family := range families {
		open = append(open, pm.matrix(reference.Probe{Port: 80, Family: family}, nil))
	}
	require.True(t, pm.converge(t, "every model pod reaches every other before any policy", open))
	return m
}

// addresses returns where the model's pods are, for the ipBlock cases: their own addresses,
// and per family the longest prefix holding all of them.
func (m *modelRun) addresses() netpoltest.Addresses {
	a := netpoltest.Addresses{Pods: map[string][]netip.Addr{}}
	byFamily := map[bool][]netip.Addr{}
	for _, p := range m.pods {
		a.Pods[p.key()] = p.ips
		for _, ip := range p.ips {
			byFamily[ip.Is6()] = append(byFamily[ip.Is6()], ip)
		}
	}
	for _, is6 := range []bool{false, true} {
		if len(byFamily[is6]) > 0 {
			a.Ranges = append(a.Ranges, commonPrefix(byFamily[is6]))
		}
	}
	return a
}

// setLabels makes the labels of the model's namespaces and pods those of the model with
// tweaks, with kubectl label.
func (m *modelRun) setLabels(t *testing.T, nsTweaks map[string][]func(*corev1.Namespace), podTweaks map[string][]func(*corev1.Pod)) {
	t.Helper()
	ctx := t.Context()
	for _, ns := range netpoltest.Namespaces() {
		cur, err := m.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		require.NoError(t, err)
		if args := labelArgs(cur.Labels, netpoltest.Namespace(ns, nsTweaks[ns]...).Labels); len(args) > 0 {
			m.c.Kubectl(t, append([]string{"label", "namespace", ns, "--overwrite"}, args...)...)
		}
		for _, name := range netpoltest.PodNames() {
			cur, err := m.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err)
			if args := labelArgs(cur.Labels, netpoltest.Pod(ns, name, podTweaks[ns+"/"+name]...).Labels); len(args) > 0 {
				m.c.Kubectl(t, append([]string{"label", "pod", "-n", ns, name, "--overwrite"}, args...)...)
			}
		}
	}
}

// reset deletes every policy, puts the model's labels back and waits until the last case's
// probes pass everywhere again.
func (m *modelRun) reset(t *testing.T) {
	t.Helper()
	m.applyPolicies(t, nil)
	m.setLabels(t, nil, nil)
	if m.lastProbes == nil {
		return
	}
	open := make([]reference.Matrix, len(m.lastProbes))
	for k, probe := range m.lastProbes {
		open[k] = m.matrix(probe, nil)
	}
	m.converge(t, "with every policy deleted", open)
	m.lastProbes = nil
}

// runCase applies one case (after a reset unless it continues the case before it), checks
// that the evaluator agrees with the case's upstream expectation on the real objects, and
// waits until the probes agree with the evaluator.
func (m *modelRun) runCase(t *testing.T, c netpoltest.Case) {
	t.Helper()
	if !c.Continues {
		m.reset(t)
	}
	m.setLabels(t, c.NamespaceTweaks, c.PodTweaks)
	m.applyPolicies(t, c.Policies)
	var probes []reference.Probe
	var upstream []*netpoltest.Expectation
	for _, family := range c.RunFamilies() {
		if !slices.Contains(m.families, family) {
			continue
		}
		probe := reference.Probe{Protocol: c.Protocol, Port: c.Port, Family: family}
		if c.TCPWant != nil {
			// A policy allowing only SCTP must not open TCP on the same port; without SCTP
			// sockets these TCP cells are what real packets can check.
			tcp := probe
			tcp.Protocol = corev1.ProtocolTCP
			probes, upstream = append(probes, tcp), append(upstream, c.TCPWant)
			if !m.sctp {
				t.Logf("%s: SCTP cells not probed (no SCTP sockets on this kernel); the TCP cells on the same port are", family)
				continue
			}
		}
		probes, upstream = append(probes, probe), append(upstream, c.Want)
	}
	if len(probes) == 0 {
		t.Skipf("no family of this cluster among %v", c.RunFamilies())
	}
	want := m.evaluate(t, probes)
	for k := range want {
		if diff := m.matrix(probes[k], upstream[k].Allowed()).Diff(want[k]); len(diff) > 0 {
			t.Errorf("probe %s: the evaluator disagrees with upstream on the real objects:\n%s", probes[k], strings.Join(diff, "\n"))
		}
	}
	m.converge(t, c.Name, want)
	m.lastProbes = probes
}

// TestRealNodeNetworkPolicy runs the upstream e2e NetworkPolicy model as real pods on three
// real nodes of a dual-stack cluster (a server and two agents, each enforcing policies for its
// own pods) and proves with real connections, in both families:
//   - every upstream e2e case, and the endPort cases, gives the evaluator's matrix once its
//     policies are applied with kubectl (and labels changed with kubectl label), policies being
//     updated in place within a test and deleted between tests;
//   - a pod that starts while a default-deny ingress policy selects it is never reachable
//     before a policy allows it (k3s-io/k3s#13432), and is once one does;
//   - restarting the server with --disable-network-policy, then each agent, leaves no chain
//     or set of ours on any node, and a connection the remaining policy denied passes.
func TestRealNodeNetworkPolicy(t *testing.T) {
	started := time.Now()
	c := nodecluster.Start(t, nodecluster.Options{Agents: 2, DualStack: true})
	m := startModel(t, c, corev1.IPv4Protocol, corev1.IPv6Protocol)
	t.Logf("cluster and model pods ready in %s; pods:\n%s", time.Since(started).Round(time.Second),
		c.Kubectl(t, "get", "pods", "-n", "x", "-o", "wide")+c.Kubectl(t, "get", "pods", "-n", "y", "-o", "wide")+c.Kubectl(t, "get", "pods", "-n", "z", "-o", "wide"))

	t.Run("upstream e2e cases", func(t *testing.T) {
		cases := append(netpoltest.UpstreamE2E(m.addresses()), netpoltest.EndPortCases()...)
		start := time.Now()
		for _, tc := range cases {
			t.Run(tc.Name, func(t *testing.T) {
				begin := time.Now()
				m.runCase(t, tc)
				t.Logf("%s", time.Since(begin).Round(100*time.Millisecond))
			})
		}
		t.Logf("%d cases in %s", len(cases), time.Since(start).Round(time.Second))
	})

	t.Run("a pod starting under a default deny is never reachable before its rules", func(t *testing.T) {
		m.reset(t)
		testNewPodUnderDefaultDeny(t, m.podMatrix)
	})

	t.Run("--disable-network-policy on a restart removes every rule and set on every node", func(t *testing.T) {
		m.reset(t)
		testDisableNetworkPolicy(t, m)
	})
}

// testNewPodUnderDefaultDeny starts a pod on agent-2 in a namespace whose default-deny ingress
// policy is already in force on that node, and probes it from a pod of another node from the
// moment its network namespace has an address until well after the node has programmed it:
// no connection may pass. Then a policy allows the prober's namespace, and connections pass.
func testNewPodUnderDefaultDeny(t *testing.T, pm *podMatrix) {
	ctx := t.Context()
	node := pm.c.Agents[1]
	var prober testPod
	for _, p := range pm.pods {
		if p.namespace == "y" && pm.nodeOf(t, p) != node.Name {
			prober = p
			break
		}
	}
	require.NotEmpty(t, prober.name, "a pod of y on another node than %s", node.Name)

	// The default deny is in force on the node: a pod already there (the witness) is refused.
	pm.createNamespace(t, netpoltest.Namespace("w"))
	witness := pm.startPods(t, realPod(netpoltest.Pod("w", "witness"), node.Name))[0]
	reaches := func(to testPod) bool {
		for _, family := range pm.families {
			if addr, _ := to.addr(family); prober.ns.Probe(netns.TCP, netip.AddrPortFrom(addr, 80), probeTimeout) != nil {
				return false
			}
		}
		return true
	}
	refused := func(to testPod) bool {
		for _, family := range pm.families {
			if addr, _ := to.addr(family); !netns.IsBlocked(prober.ns.Probe(netns.TCP, netip.AddrPortFrom(addr, 80), probeTimeout)) {
				return false
			}
		}
		return true
	}
	nodecluster.Eventually(t, time.Minute, "the witness pod answers before any policy", func() bool { return reaches(witness) })
	pm.applyPolicies(t, []*networkingv1.NetworkPolicy{netpoltest.Policy("w", "deny-ingress", netpoltest.IngressRules())})
	nodecluster.Eventually(t, time.Minute, "the default deny refuses the witness on "+node.Name, func() bool { return refused(witness) })

	// The new pod: found by its network namespace appearing below the node's containerd state.
	known := map[string]bool{}
	for _, path := range node.PodNetnsPaths(t) {
		known[path] = true
	}
	_, err := pm.client.CoreV1().Pods("w").Create(ctx, realPod(netpoltest.Pod("w", "new"), node.Name), metav1.CreateOptions{})
	require.NoError(t, err)
	var fresh *netns.Namespace
	poll(t, 5*time.Millisecond, 2*time.Minute, "the new pod's network namespace exists", func() bool {
		for _, path := range node.PodNetnsPaths(t) {
			if !known[path] {
				fresh, err = netns.Open(path, "pod-new")
				return err == nil
			}
		}
		return false
	})
	// Listening before the pod has an address: nothing but the rules can refuse a probe.
	pm.serveEcho(t, fresh)
	var addrs []netip.Addr
	poll(t, 5*time.Millisecond, 2*time.Minute, "the new pod's network namespace has an address of every family", func() bool {
		addrs = globalAddrs(fresh)
		return len(addrs) == len(pm.families)
	})

	// Several probers per address: a refusal whose ICMP error the kernel's rate limit holds
	// back costs a prober its whole timeout.
	var attempts, early, passed atomic.Int64
	var programmed atomic.Bool
	var firstPass atomic.Value
	stop := make(chan struct{})
	var probing sync.WaitGroup
	for _, a := range addrs {
		for range proberPerAddr {
			probing.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if !programmed.Load() {
						early.Add(1)
					}
					attempts.Add(1)
					if err := prober.ns.Probe(netns.TCP, netip.AddrPortFrom(a, 80), 300*time.Millisecond); err == nil {
						passed.Add(1)
						firstPass.CompareAndSwap(nil, a.String())
					}
				}
			})
		}
	}
	// Probing goes on until the node has programmed the pod in both families and the API
	// reports it ready, and a while after.
	poll(t, 100*time.Millisecond, 2*time.Minute, node.Name+" has programmed the new pod in both families", func() bool {
		for _, a := range addrs {
			fam := corev1.IPv4Protocol
			if a.Is6() {
				fam = corev1.IPv6Protocol
			}
			// A pod joins this set only once its rules are live (netpol.ProgrammedPodsSet).
			if _, err := node.NS.Exec(ctx, "ipset", "test", netpol.ProgrammedPodsSet(fam), a.String()); err != nil {
				return false
			}
		}
		return true
	})
	programmed.Store(true)
	nodecluster.Eventually(t, 2*time.Minute, "the new pod is ready", func() bool {
		pod, err := pm.client.CoreV1().Pods("w").Get(ctx, "new", metav1.GetOptions{})
		return err == nil && podReady(pod)
	})
	time.Sleep(2 * time.Second)
	close(stop)
	probing.Wait()
	t.Logf("%d probes of %v from %s before any policy allowed them, %d of them before %s had programmed the pod",
		attempts.Load(), addrs, prober.key(), early.Load(), node.Name)
	require.NotZero(t, attempts.Load())
	assert.Zero(t, passed.Load(), "a connection reached the new pod before a policy allowed it (first to %v)", firstPass.Load())

	newPod := testPod{namespace: "w", name: "new", ns: fresh, ips: addrs}
	api, err := pm.client.CoreV1().Pods("w").Get(ctx, "new", metav1.GetOptions{})
	require.NoError(t, err)
	var apiIPs []netip.Addr
	for _, ip := range api.Status.PodIPs {
		apiIPs = append(apiIPs, netip.MustParseAddr(ip.IP))
	}
	require.ElementsMatch(t, apiIPs, addrs, "the network namespace probed is the new pod's")

	pm.applyPolicies(t, []*networkingv1.NetworkPolicy{
		netpoltest.Policy("w", "deny-ingress", netpoltest.IngressRules()),
		netpoltest.Policy("w", "allow-from-y", netpoltest.IngressRules(netpoltest.From(netpoltest.Peers(netpoltest.NSPeer(netpoltest.LabelsSel("ns", "y")))))),
	})
	nodecluster.Eventually(t, time.Minute, "the policy allowing y lets the prober reach the new pod", func() bool { return reaches(newPod) })
}

// nodeOf returns the node a pod runs on.
func (pm *podMatrix) nodeOf(t *testing.T, p testPod) string {
	t.Helper()
	pod, err := pm.client.CoreV1().Pods(p.namespace).Get(t.Context(), p.name, metav1.GetOptions{})
	require.NoError(t, err)
	return pod.Spec.NodeName
}

// poll checks cond every interval, for the races nodecluster.Eventually's one-second poll
// would miss, until it holds or timeout passes.
func poll(t *testing.T, interval, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// globalAddrs returns the global unicast addresses of ns's interfaces.
func globalAddrs(ns *netns.Namespace) []netip.Addr {
	var out []netip.Addr
	_ = ns.Do(func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsGlobalUnicast() {
				out = append(out, p.Addr())
			}
		}
		return nil
	})
	return out
}

// testDisableNetworkPolicy denies ingress into x, restarts the server with
// --disable-network-policy and then each agent (agents read the setting from the server when
// they join), and checks every node: no chain or set of ours is left in either family, and
// the connections the policy still in the API denied pass.
func testDisableNetworkPolicy(t *testing.T, m *modelRun) {
	deny := netpoltest.Policy("x", "deny-ingress", netpoltest.IngressRules())
	m.applyPolicies(t, []*networkingv1.NetworkPolicy{deny})
	var probes []reference.Probe
	for _, family := range m.families {
		probes = append(probes, reference.Probe{Port: 80, Family: family})
	}
	want := m.evaluate(t, probes)
	for _, w := range want {
		require.False(t, cellOf(t, w, "y/a", "x/a"), "the evaluator denies y/a -> x/a under %s", deny.Name)
	}
	require.True(t, m.converge(t, "x denies ingress before the restarts", want))
	for _, n := range m.c.Nodes() {
		require.NotEmpty(t, netpolLeftovers(nodeRules(t, n)), "%s has our rules before the restarts", n.Name)
	}

	m.c.Server.Stop(t)
	m.c.Server.StartWith(t, "--disable-network-policy")
	for _, a := range m.c.Agents {
		a.Stop(t)
		a.Start(t)
	}
	m.c.WaitReady(t)
	for _, n := range m.c.Nodes() {
		assert.Empty(t, netpolLeftovers(nodeRules(t, n)), "%s keeps chains or sets of ours", n.Name)
	}
	open := make([]reference.Matrix, len(probes))
	for k, probe := range probes {
		open[k] = m.matrix(probe, nil)
	}
	m.converge(t, "with network policy disabled, the policy still in the API denies nothing", open)
	for _, n := range m.c.Nodes() {
		assert.Empty(t, netpolLeftovers(nodeRules(t, n)), "%s put chains or sets of ours back", n.Name)
	}
}

// nodeRules returns a node's filter tables of both families and its ipset names.
func nodeRules(t *testing.T, n *nodecluster.Node) (tables, sets string) {
	t.Helper()
	var b strings.Builder
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := n.NS.Exec(t.Context(), save)
		require.NoError(t, err)
		b.WriteString(out)
	}
	sets, err := n.NS.Exec(t.Context(), "ipset", "list", "-n")
	require.NoError(t, err)
	return b.String(), sets
}

// netpolLeftovers returns the lines of iptables-save output naming a NetworkPolicy chain
// (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*, kube-router's names and ours) and the ipset
// names of a pod or ipBlock set (KUBE-SRC-*, KUBE-DST-*, IPv6 ones prefixed inet6:).
func netpolLeftovers(tables, sets string) []string {
	var out []string
	for line := range strings.Lines(tables) {
		for _, chain := range []string{"KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-"} {
			if strings.Contains(line, chain) {
				out = append(out, strings.TrimSpace(line))
				break
			}
		}
	}
	for line := range strings.Lines(sets) {
		name := strings.TrimPrefix(strings.TrimSpace(line), "inet6:")
		if strings.HasPrefix(name, "KUBE-SRC-") || strings.HasPrefix(name, "KUBE-DST-") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// lateClusterCIDR is the ClusterCIDR of the node that joins late: outside --cluster-cidr.
const lateClusterCIDR = `apiVersion: networking.x-k8s.io/v1
kind: ClusterCIDR
metadata: {name: late}
spec:
  nodeSelector:
    nodeSelectorTerms:
    - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [agent-2]}]
  perNodeHostBits: 8
  ipv4: 10.247.0.0/16
`

// TestRealNodeNetworkPolicyClusterCIDR is the case K3s warns about ("The network policy
// controller could not work properly" with --multi-cluster-cidr): a ClusterCIDR outside
// --cluster-cidr, applied before its node joins, gives that node's pods 10.247.x addresses;
// they reach pods of the 10.42.x nodes and are reached by them, and NetworkPolicies (a default
// deny refusing, a pod selector allowing) hold in both directions between the two ranges,
// for ingress and egress.
func TestRealNodeNetworkPolicyClusterCIDR(t *testing.T) {
	started := time.Now()
	c := nodecluster.Start(t, nodecluster.Options{Agents: 1, ServerArgs: []string{"--multi-cluster-cidr"}})
	c.Apply(t, lateClusterCIDR)
	late := c.AddAgent(t, "agent-2")
	lateRange := netip.MustParsePrefix("10.247.0.0/16")
	clusterRange := netip.MustParsePrefix("10.42.0.0/16")
	pm := newPodMatrix(t, c, corev1.IPv4Protocol)
	nodecluster.Eventually(t, time.Minute, "the late node's pod CIDR comes from its ClusterCIDR", func() bool {
		n, err := pm.client.CoreV1().Nodes().Get(t.Context(), late.Name, metav1.GetOptions{})
		return err == nil && n.Spec.PodCIDR == "10.247.0.0/24"
	})

	// A friend and a stranger on every node.
	pm.createNamespace(t, netpoltest.Namespace("mc"))
	var pods []*corev1.Pod
	for _, n := range c.Nodes() {
		for _, role := range []string{"friend", "stranger"} {
			pods = append(pods, realPod(netpoltest.Pod("mc", role+"-"+n.Name, netpoltest.WithLabels("role", role)), n.Name))
		}
	}
	pm.pods = pm.startPods(t, pods...)
	for _, p := range pm.pods {
		want := clusterRange
		if strings.HasSuffix(p.name, late.Name) {
			want = lateRange
		}
		assert.True(t, want.Contains(p.ips[0]), "pod %s has %s, outside %s", p.key(), p.ips[0], want)
	}
	t.Logf("cluster and pods ready in %s:\n%s", time.Since(started).Round(time.Second), c.Kubectl(t, "get", "pods", "-n", "mc", "-o", "wide"))

	var (
		friends     = netpoltest.LabelsSel("role", "friend")
		denyIngress = netpoltest.Policy("mc", "deny-ingress", netpoltest.IngressRules())
		denyEgress  = netpoltest.Policy("mc", "deny-egress", netpoltest.PolicyTypes(netpoltest.TypeEgress))
		fromFriends = netpoltest.Policy("mc", "allow-from-friends", netpoltest.IngressRules(netpoltest.From(netpoltest.Peers(netpoltest.PodPeer(friends)))))
		toFriends   = netpoltest.Policy("mc", "allow-to-friends", netpoltest.PolicyTypes(netpoltest.TypeEgress),
			netpoltest.EgressRules(netpoltest.To(netpoltest.Peers(netpoltest.PodPeer(friends)))))
		probes = []reference.Probe{{Port: 80, Family: corev1.IPv4Protocol}, {Protocol: corev1.ProtocolUDP, Port: 81, Family: corev1.IPv4Protocol}}
	)
	// Cells between the ranges each step must decide as said, so both directions are covered.
	lateFriend, lateStranger := "mc/friend-"+late.Name, "mc/stranger-"+late.Name
	for _, step := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		cells    map[[2]string]bool
	}{
		{
			name: "with no policy every pod reaches every other, across the ranges",
			cells: map[[2]string]bool{
				{lateStranger, "mc/stranger-server"}: true, {"mc/stranger-agent-1", lateStranger}: true,
			},
		},
		{
			name:     "a default deny refuses ingress from either range",
			policies: []*networkingv1.NetworkPolicy{denyIngress},
			cells: map[[2]string]bool{
				{lateFriend, "mc/stranger-server"}: false, {"mc/friend-agent-1", lateStranger}: false,
			},
		},
		{
			name:     "a pod selector lets friends in, from either range",
			policies: []*networkingv1.NetworkPolicy{denyIngress, fromFriends},
			cells: map[[2]string]bool{
				{lateFriend, "mc/stranger-server"}: true, {"mc/friend-server", lateStranger}: true,
				{lateStranger, "mc/friend-agent-1"}: false, {"mc/stranger-agent-1", lateFriend}: false,
			},
		},
		{
			name:     "a default deny refuses egress to either range",
			policies: []*networkingv1.NetworkPolicy{denyEgress},
			cells: map[[2]string]bool{
				{lateFriend, "mc/friend-server"}: false, {"mc/friend-agent-1", lateFriend}: false,
			},
		},
		{
			name:     "a pod selector lets pods out to friends only, in either range",
			policies: []*networkingv1.NetworkPolicy{denyEgress, toFriends},
			cells: map[[2]string]bool{
				{lateStranger, "mc/friend-server"}: true, {"mc/stranger-agent-1", lateFriend}: true,
				{lateFriend, "mc/stranger-server"}: false, {"mc/friend-server", lateStranger}: false,
			},
		},
	} {
		t.Run(step.name, func(t *testing.T) {
			begin := time.Now()
			pm.applyPolicies(t, step.policies)
			want := pm.evaluate(t, probes)
			for _, w := range want {
				for cell, ok := range step.cells {
					assert.Equal(t, ok, cellOf(t, w, cell[0], cell[1]), "the evaluator's %s -> %s %s", cell[0], cell[1], w.Probe)
				}
			}
			pm.converge(t, step.name, want)
			t.Logf("%s", time.Since(begin).Round(100*time.Millisecond))
		})
	}
}

// cellOf returns the cell of m from one endpoint to another, by name.
func cellOf(t *testing.T, m reference.Matrix, from, to string) bool {
	t.Helper()
	i, j := slices.Index(m.Endpoints, from), slices.Index(m.Endpoints, to)
	require.True(t, i >= 0 && j >= 0, "no cell %s -> %s in %v", from, to, m.Endpoints)
	return m.Allowed[i][j]
}

func TestLabelArgs(t *testing.T) {
	tests := []struct {
		name             string
		current, desired map[string]string
		want             []string
	}{
		{name: "equal labels need no change", current: map[string]string{"pod": "b"}, desired: map[string]string{"pod": "b"}},
		{
			name:    "a label to add and one to change are set, sorted by key",
			current: map[string]string{"pod": "b", "role": "old"},
			desired: map[string]string{"pod": "b", "role": "new", "pod2": "updated"},
			want:    []string{"pod2=updated", "role=new"},
		},
		{
			name:    "a label the model lacks is removed",
			current: map[string]string{"pod": "b", "pod2": "updated", "target": "isolated"},
			desired: map[string]string{"pod": "b"},
			want:    []string{"pod2-", "target-"},
		},
		{name: "from no labels", current: nil, desired: map[string]string{"ns": "y"}, want: []string{"ns=y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, labelArgs(tt.current, tt.desired))
		})
	}
}

func TestCommonPrefix(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	tests := []struct {
		name  string
		addrs []netip.Addr
		want  string
	}{
		{name: "one address is its own host prefix", addrs: addrs("10.42.1.7"), want: "10.42.1.7/32"},
		{name: "pods of three /24 node ranges share a /22", addrs: addrs("10.42.0.9", "10.42.1.7", "10.42.2.12"), want: "10.42.0.0/22"},
		{name: "pods of two ClusterCIDRs share a short prefix", addrs: addrs("10.42.0.9", "10.247.0.3"), want: "10.0.0.0/8"},
		{name: "IPv6 pods of /64 node ranges", addrs: addrs("fd00:42::5", "fd00:42:0:1::7", "fd00:42:0:2::3"), want: "fd00:42::/62"},
		{name: "no address, no prefix", want: "invalid Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := commonPrefix(tt.addrs)
			assert.Equal(t, tt.want, got.String())
			for _, a := range tt.addrs {
				assert.True(t, got.Contains(a), "%s holds %s", got, a)
			}
		})
	}
}

func TestNetpolLeftovers(t *testing.T) {
	tests := []struct {
		name         string
		tables, sets string
		want         []string
	}{
		{
			name: "kube-proxy's and flannel's chains and other sets are not ours",
			tables: "*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-PROXY-FIREWALL - [0:0]\n:FLANNEL-FWD - [0:0]\n" +
				"-A FORWARD -j KUBE-FORWARD\nCOMMIT\n",
			sets: "cali40all-hosts\nKUBE-LOOP-BACK\n",
		},
		{
			name:   "our chains, the jumps to them and our sets of both families are",
			tables: "*filter\n:KUBE-ROUTER-FORWARD - [0:0]\n:KUBE-NWPLCY-COMMON - [0:0]\n-A FORWARD -j KUBE-ROUTER-FORWARD\n:KUBE-POD-FW-ABC - [0:0]\nCOMMIT\n",
			sets:   "KUBE-DST-ABCDEF\ninet6:KUBE-SRC-123456\n",
			want: []string{":KUBE-ROUTER-FORWARD - [0:0]", ":KUBE-NWPLCY-COMMON - [0:0]", "-A FORWARD -j KUBE-ROUTER-FORWARD",
				":KUBE-POD-FW-ABC - [0:0]", "KUBE-DST-ABCDEF", "inet6:KUBE-SRC-123456"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, netpolLeftovers(tt.tables, tt.sets))
		})
	}
}

func TestPolicyManifest(t *testing.T) {
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		want     string
	}{
		{
			name:     "a default deny of ingress",
			policies: []*networkingv1.NetworkPolicy{netpoltest.Policy("x", "deny-ingress", netpoltest.IngressRules())},
			want: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-ingress\n  namespace: x\n" +
				"spec:\n  podSelector: {}\n",
		},
		{
			name: "two policies are two documents, ports and peers as the API spells them",
			policies: []*networkingv1.NetworkPolicy{
				netpoltest.Policy("x", "a", netpoltest.Targets(netpoltest.LabelsSel("pod", "a")),
					netpoltest.IngressRules(netpoltest.From(netpoltest.Peers(netpoltest.NSPeer(netpoltest.LabelsSel("ns", "y"))), netpoltest.PortRange(corev1.ProtocolUDP, 81, 84)))),
				netpoltest.Policy("y", "b", netpoltest.PolicyTypes(netpoltest.TypeEgress),
					netpoltest.EgressRules(netpoltest.To(netpoltest.Peers(netpoltest.CIDRPeer("10.42.0.0/22", "10.42.1.7/32")), netpoltest.NamedPort("serve-80-tcp")))),
			},
			want: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: a\n  namespace: x\nspec:\n  ingress:\n" +
				"  - from:\n    - namespaceSelector:\n        matchLabels:\n          ns: \"y\"\n    ports:\n    - endPort: 84\n      port: 81\n      protocol: UDP\n" +
				"  podSelector:\n    matchLabels:\n      pod: a\n" +
				"---\n" +
				"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: b\n  namespace: \"y\"\nspec:\n  egress:\n" +
				"  - ports:\n    - port: serve-80-tcp\n    to:\n    - ipBlock:\n        cidr: 10.42.0.0/22\n        except:\n        - 10.42.1.7/32\n" +
				"  podSelector: {}\n  policyTypes:\n  - Egress\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := policyManifest(tt.policies)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
