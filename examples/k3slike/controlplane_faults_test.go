package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/controlplane"
	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// The tests in this file put a k3slike server through faults of the control plane it runs
// against: the datastore and the API server crash mid-sync and come back, the API server is
// unreachable for a minute, and the server itself is killed with SIGKILL mid-apply. The
// control plane is the test's own (controlplane.Start on a data dir and port that survive a
// restart); k3slike runs in a network namespace that plays its node and reaches the API server
// through a proxy of the test's, which can black-hole every connection. Throughout, a client
// the NetworkPolicy refuses probes the node's pod every 100 ms and must never get in, and
// samplers watch that no Service ever has two DaemonSets, no node's pod CIDR changes or is
// shared, and no packaged object is created twice. Objects created while the fault lasts must
// be handled once it is over.

// faultNode is the k3slike server's own node; its pods are network namespaces routed from the
// node's namespace.
const (
	faultNode   = "faults"
	faultNodeIP = "192.0.2.70"
)

// faultEnv is one control plane, one k3slike server and the node's data plane.
type faultEnv struct {
	t       *testing.T
	exe     string
	binDir  string
	dataDir string
	cpCfg   controlplane.Config
	cp      *controlplane.ControlPlane
	client  kubernetes.Interface
	kubectl *cluster
	proxy   *faultProxy
	// kubeconfig is k3slike's, through the proxy.
	kubeconfig string
	srv        *server
	node       *netns.Namespace
	// nodeIPs is every node's InternalIP, the ServiceLB status of every Service.
	nodeIPs map[string]string
	// services and manifests are the LoadBalancer Services and manifest files that should
	// exist, each served or applied exactly once.
	services  []string
	manifests []string
	sampler   *invariantSampler
	probes    *policyProber
	// late is a client no policy admits until the test adds one during a fault.
	late   *netns.Namespace
	target netip.AddrPort
}

// newFaultEnv starts the control plane, the proxy, the node's namespaces, k3slike, a first
// set of nodes, Services and manifests, and the NetworkPolicies; it returns once all of that
// has converged and the probes and samplers run.
func newFaultEnv(t *testing.T) *faultEnv {
	netns.Require(t)
	binDir := requireBinaries(t)
	exe := buildK3slike(t)
	e := &faultEnv{t: t, exe: exe, binDir: binDir, dataDir: t.TempDir(), nodeIPs: map[string]string{faultNode: faultNodeIP}}
	cpDir := t.TempDir()
	e.cpCfg = controlplane.Config{DataDir: cpDir, BinDir: binDir, APIServerPort: freePort(t)}
	t.Cleanup(func() {
		if t.Failed() {
			logControlPlaneTails(t, filepath.Join(cpDir, "logs"))
		}
	})
	e.startControlPlane()
	t.Cleanup(func() { assert.NoError(t, e.cp.Stop()) })
	e.kubectl = &cluster{t: t, binDir: binDir, kubeconfig: e.cp.AdminKubeconfig}

	// The node: k3slike, its proxy listener and its netpol rules live here.
	e.node = netns.NewT(t, "k3sfault")
	require.NoError(t, e.node.EnableForwarding())
	e.proxy = startFaultProxy(t, e.node, strings.TrimPrefix(e.cp.URL, "https://"))
	admin, err := os.ReadFile(e.cp.AdminKubeconfig)
	require.NoError(t, err)
	require.Contains(t, string(admin), e.cp.URL)
	e.kubeconfig = filepath.Join(t.TempDir(), "k3slike.kubeconfig")
	require.NoError(t, os.WriteFile(e.kubeconfig, []byte(strings.ReplaceAll(string(admin), e.cp.URL, "https://"+e.proxy.addr)), 0o600))

	// The server's node exists before the server, as a kubelet beside it would register it.
	e.createNode(faultNode, faultNodeIP)
	e.startServer()
	e.addNodes(2)
	e.addServices(3)
	e.addManifests(2)

	// A pod on the server's node with an echo server, and three clients outside the cluster
	// routed through the node: one the policies admit, one they refuse, and one a policy
	// created during a fault admits.
	podCIDR := e.waitPodCIDR(faultNode)
	// The controller manager creates the default ServiceAccount, which a pod needs, shortly
	// after the start.
	e.eventually(time.Minute, "the pod is created", func() error {
		_, err := e.client.CoreV1().Pods("default").Create(t.Context(), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "server", Labels: map[string]string{"app": "server"}},
			Spec: corev1.PodSpec{NodeName: faultNode, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}},
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}},
		}, metav1.CreateOptions{})
		return err
	})
	var podIP netip.Addr
	e.eventually(time.Minute, "kwok runs the pod with an IP from its node's pod CIDR", func() error {
		p, err := e.client.CoreV1().Pods("default").Get(t.Context(), "server", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if podIP, err = netip.ParseAddr(p.Status.PodIP); err != nil || !podCIDR.Contains(podIP) {
			return fmt.Errorf("pod IP %q, node's pod CIDR %s", p.Status.PodIP, podCIDR)
		}
		return nil
	})
	gateway := podCIDR.Masked().Addr()
	for range 254 {
		gateway = gateway.Next()
	}
	require.NotEqual(t, gateway, podIP)
	pod := routedFromNode(t, e.node, "pod", netip.PrefixFrom(podIP, podCIDR.Bits()), gateway)
	echo, err := pod.Serve(t.Context(), netns.TCP, netip.AddrPortFrom(netip.IPv4Unspecified(), 80))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, echo.Close()) })
	allowed := routedFromNode(t, e.node, "allowed", netip.MustParsePrefix("192.168.60.2/30"), netip.MustParseAddr("192.168.60.1"))
	denied := routedFromNode(t, e.node, "denied", netip.MustParsePrefix("192.168.50.2/30"), netip.MustParseAddr("192.168.50.1"))
	e.late = routedFromNode(t, e.node, "late", netip.MustParsePrefix("192.168.70.2/30"), netip.MustParseAddr("192.168.70.1"))
	e.target = netip.AddrPortFrom(podIP, 80)
	e.eventually(time.Minute, "with no policy netpol lets the denied client in", func() error {
		return denied.Probe(netns.TCP, e.target, time.Second)
	})
	e.allowFrom("allow-allowed", "192.168.60.0/24")
	e.eventually(time.Minute, "the policy shuts the denied client out", func() error {
		if err := denied.Probe(netns.TCP, e.target, time.Second); !netns.IsBlocked(err) {
			return fmt.Errorf("denied client: %v", err)
		}
		return allowed.Probe(netns.TCP, e.target, time.Second)
	})
	e.requireConverged("the first objects")
	e.sampler = startInvariantSampler(t, e.client)
	e.probes = startPolicyProber(t, denied, allowed, e.target)
	return e
}

// startControlPlane starts (or, on the same data dir and port, restarts) the control plane.
func (e *faultEnv) startControlPlane() {
	ctx, cancel := context.WithTimeout(e.t.Context(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	cp, err := controlplane.Start(ctx, e.cpCfg)
	require.NoError(e.t, err)
	e.t.Logf("control plane up in %s", time.Since(start).Round(time.Millisecond))
	e.cp = cp
	if e.client == nil {
		e.client, err = kubernetes.NewForConfig(cp.Config)
		require.NoError(e.t, err)
	}
}

// crashControlPlane kills the datastore and the API server with SIGKILL, stops the other
// components, runs meanwhile, and starts the control plane again on the same state.
func (e *faultEnv) crashControlPlane(meanwhile func()) {
	killed := 0
	for _, pid := range childrenNamed("kine", "kube-apiserver") {
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed++
		}
	}
	require.Equal(e.t, 2, killed, "kine and kube-apiserver are this test's children")
	require.NoError(e.t, e.cp.Stop())
	meanwhile()
	e.startControlPlane()
}

// childrenNamed returns the processes this one started whose command is one of names.
func childrenNamed(names ...string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		open, end := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) || !slices.Contains(names, string(stat[open+1:end])) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// startServer runs k3slike in the node's namespace against the proxy.
func (e *faultEnv) startServer() {
	e.srv = startServer(e.t, "ip", []string{"netns", "exec", e.node.Name(), e.exe,
		"--kubeconfig=" + e.kubeconfig, "--data-dir=" + e.dataDir, "--node-name=" + faultNode, "--node-ip=" + faultNodeIP,
		"--bin-dir=" + e.binDir, "--metrics-bind-address=127.0.0.1:" + strconv.Itoa(freePort(e.t)),
		// Helm installing Traefik would only load the machine.
		"--disable=traefik"})
}

// killServer kills k3slike with SIGKILL: no Lease is released, nothing is cleaned up.
func (e *faultEnv) killServer() {
	require.NoError(e.t, e.srv.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-e.srv.done:
	case <-time.After(30 * time.Second):
		e.t.Fatal("k3slike did not die of SIGKILL")
	}
}

// createNode creates a kwok node with the uninitialized taint and its address in the
// annotation the cloud-controller stub reads, as a K3s agent registers it.
func (e *faultEnv) createNode(name, ip string) {
	e.t.Helper()
	n := testcluster.Node(name,
		testcluster.Annotations(map[string]string{"k3s.io/internal-ip": ip}),
		testcluster.Taints(corev1.Taint{Key: ccmstub.UninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}))
	_, err := e.client.CoreV1().Nodes().Create(e.t.Context(), n, metav1.CreateOptions{})
	require.NoError(e.t, err)
	e.nodeIPs[name] = ip
}

// addNodes creates n more nodes.
func (e *faultEnv) addNodes(n int) {
	for range n {
		i := len(e.nodeIPs)
		e.createNode("worker-"+strconv.Itoa(i), "192.0.2."+strconv.Itoa(100+i))
	}
}

// addServices creates n more LoadBalancer Services.
func (e *faultEnv) addServices(n int) {
	for range n {
		i := len(e.services)
		name := "lb-" + strconv.Itoa(i)
		_, err := e.client.CoreV1().Services("default").Create(e.t.Context(), &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Port: int32(9000 + i), TargetPort: intstr.FromInt32(80)}}},
		}, metav1.CreateOptions{})
		require.NoError(e.t, err)
		e.services = append(e.services, name)
	}
}

// deleteService deletes a Service; its DaemonSet must go too.
func (e *faultEnv) deleteService(name string) {
	require.NoError(e.t, e.client.CoreV1().Services("default").Delete(e.t.Context(), name, metav1.DeleteOptions{}))
	e.services = slices.DeleteFunc(e.services, func(s string) bool { return s == name })
}

// addManifests writes n more manifest files, each with one ConfigMap, into the manifests
// directory of the deploy controller.
func (e *faultEnv) addManifests(n int) {
	dir := filepath.Join(e.dataDir, "server", "manifests")
	require.NoError(e.t, os.MkdirAll(dir, 0o700))
	for range n {
		name := "fault-" + strconv.Itoa(len(e.manifests))
		manifest := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: default}\ndata: {file: %s}\n", name, name)
		tmp := filepath.Join(dir, "."+name+".tmp")
		require.NoError(e.t, os.WriteFile(tmp, []byte(manifest), 0o600))
		require.NoError(e.t, os.Rename(tmp, filepath.Join(dir, name+".yaml")))
		e.manifests = append(e.manifests, name)
	}
}

// allowFrom adds a policy admitting cidr to the pod's port 80.
func (e *faultEnv) allowFrom(name, cidr string) {
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(80)
	_, err := e.client.NetworkingV1().NetworkPolicies("default").Create(e.t.Context(), &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: cidr}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(e.t, err)
}

func (e *faultEnv) waitPodCIDR(node string) netip.Prefix {
	var cidr netip.Prefix
	e.eventually(time.Minute, node+" gets a pod CIDR", func() error {
		n, err := e.client.CoreV1().Nodes().Get(e.t.Context(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cidr, err = netip.ParsePrefix(n.Spec.PodCIDR)
		return err
	})
	return cidr
}

// eventually polls check every 500 ms until it returns nil, failing the test with its last
// error after timeout.
func (e *faultEnv) eventually(timeout time.Duration, what string, check func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// converged checks the state every controller should reach: every Service has exactly one
// DaemonSet and every node's address in its status, no deleted Service keeps one, every node
// has one pod CIDR of its own and no uninitialized taint, and every manifest file is applied,
// and announced by at most one AppliedManifest Event.
func (e *faultEnv) converged() error {
	ctx := e.t.Context()
	var problems []string
	want := slices.Sorted(func(yield func(string) bool) {
		for _, ip := range e.nodeIPs {
			if !yield(ip) {
				return
			}
		}
	})
	daemonSets, err := e.client.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "svccontroller.k3s.cattle.io/svcname"})
	if err != nil {
		return err
	}
	perService := map[string]int{}
	for _, ds := range daemonSets.Items {
		perService[ds.Labels["svccontroller.k3s.cattle.io/svcname"]]++
	}
	for _, name := range e.services {
		svc, err := e.client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var got []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			got = append(got, in.IP)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("Service %s publishes %v, want %v", name, got, want))
		}
		if perService[name] != 1 {
			problems = append(problems, fmt.Sprintf("Service %s has %d DaemonSets", name, perService[name]))
		}
		delete(perService, name)
	}
	for name, n := range perService {
		if name != "traefik" {
			problems = append(problems, fmt.Sprintf("%d DaemonSets left for Service %s, which should have none", n, name))
		}
	}
	nodes, err := e.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	owner := map[string]string{}
	for _, n := range nodes.Items {
		if len(n.Spec.PodCIDRs) != 1 {
			problems = append(problems, fmt.Sprintf("node %s has pod CIDRs %v", n.Name, n.Spec.PodCIDRs))
		}
		for _, c := range n.Spec.PodCIDRs {
			if other, ok := owner[c]; ok {
				problems = append(problems, fmt.Sprintf("nodes %s and %s share %s", other, n.Name, c))
			}
			owner[c] = n.Name
		}
		if slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == ccmstub.UninitializedTaint }) {
			problems = append(problems, "node "+n.Name+" is still uninitialized")
		}
	}
	if len(nodes.Items) != len(e.nodeIPs) {
		problems = append(problems, fmt.Sprintf("%d nodes, want %d", len(nodes.Items), len(e.nodeIPs)))
	}
	applied, err := appliedEvents(ctx, e.client)
	if err != nil {
		return err
	}
	for _, name := range e.manifests {
		cm, err := e.client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			problems = append(problems, fmt.Sprintf("manifest %s: %v", name, err))
		} else if cm.Data["file"] != name {
			problems = append(problems, fmt.Sprintf("ConfigMap %s has data %v", name, cm.Data))
		}
		// A server killed with SIGKILL may take the Event of its last apply with it, so
		// none is no proof of a lost apply; two are proof of a repeated one.
		if applied[name] > 1 {
			problems = append(problems, fmt.Sprintf("manifest %s announced as applied %d times", name, applied[name]))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// appliedEvents counts the AppliedManifest Events of each Addon.
func appliedEvents(ctx context.Context, client kubernetes.Interface) (map[string]int, error) {
	events, err := client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=AppliedManifest"})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, ev := range events.Items {
		out[ev.InvolvedObject.Name] += int(max(ev.Count, 1))
	}
	return out, nil
}

// logPending logs what the controllers have not done yet at a fault, which shows that the
// fault came in the middle of their work.
func (e *faultEnv) logPending(when string) {
	if err := e.converged(); err != nil {
		e.t.Logf("work pending %s: %v", when, err)
	} else {
		e.t.Logf("no work pending %s", when)
	}
}

// requireConverged waits for converged.
func (e *faultEnv) requireConverged(what string) {
	e.t.Helper()
	start := time.Now()
	e.eventually(2*time.Minute, "every controller handles "+what, e.converged)
	e.t.Logf("every controller handled %s in %s", what, time.Since(start).Round(100*time.Millisecond))
}

// finish checks what the probes and samplers saw across the fault, after the late client is
// admitted by the policy added during it.
func (e *faultEnv) finish() {
	e.t.Helper()
	e.eventually(time.Minute, "the policy created during the fault admits the late client", func() error {
		return e.late.Probe(netns.TCP, e.target, time.Second)
	})
	e.eventually(time.Minute, "the allowed client gets in", e.probes.allowedNow)
	e.sampler.stop()
	e.probes.stop()
	e.sampler.check(e.t)
	e.probes.check(e.t)
}

// TestControlPlaneCrashMidSync kills the datastore and the API server with SIGKILL while every
// controller is busy with a burst of new nodes, Services and manifests, writes more manifests
// while the control plane is down, and restarts it on the same state. Every controller
// recovers: nothing it had done is done again or undone, what it had not finished it finishes,
// and objects created after the restart are handled too.
func TestControlPlaneCrashMidSync(t *testing.T) {
	e := newFaultEnv(t)
	e.addNodes(2)
	e.addServices(3)
	e.addManifests(2)
	e.logPending("when the control plane crashes")
	e.crashControlPlane(func() {
		e.addManifests(1)
		time.Sleep(5 * time.Second)
	})
	e.addNodes(1)
	e.addServices(2)
	e.allowFrom("allow-late", "192.168.70.0/24")
	e.requireConverged("the objects of the burst, the outage and after")
	e.finish()
}

// TestAPIServerUnreachableForAMinute black-holes every connection of the k3slike server to
// the API server for a minute: the controllers lose their Leases and their watches hang.
// Meanwhile the test creates nodes, Services, manifests and a policy, and deletes a Service;
// once the API server is reachable again every controller handles all of it.
func TestAPIServerUnreachableForAMinute(t *testing.T) {
	e := newFaultEnv(t)
	e.proxy.blackhole()
	start := time.Now()
	e.addNodes(2)
	e.addServices(2)
	e.deleteService("lb-0")
	e.addManifests(2)
	e.allowFrom("allow-late", "192.168.70.0/24")
	time.Sleep(time.Until(start.Add(time.Minute)))
	assert.Error(t, e.late.Probe(netns.TCP, e.target, time.Second), "nothing reached netpol while the API server was unreachable")
	e.proxy.restore()
	t.Logf("API server unreachable for %s", time.Since(start).Round(100*time.Millisecond))
	e.requireConverged("the objects created while the API server was unreachable")
	e.finish()
}

// TestServerKilledMidApply kills the k3slike server with SIGKILL while its controllers apply a
// burst of nodes, Services and manifests, creates more while it is dead, and starts it again:
// the new process takes the Leases over once the dead one's expire and finishes the work with
// no duplicate DaemonSet or pod CIDR and no manifest applied twice.
func TestServerKilledMidApply(t *testing.T) {
	e := newFaultEnv(t)
	e.addNodes(2)
	e.addServices(3)
	e.addManifests(2)
	time.Sleep(500 * time.Millisecond)
	e.killServer()
	e.logPending("when the server was killed")
	e.addNodes(1)
	e.addServices(1)
	e.addManifests(1)
	e.allowFrom("allow-late", "192.168.70.0/24")
	time.Sleep(2 * time.Second)
	e.startServer()
	e.requireConverged("the objects of the burst and those created while it was dead")
	e.finish()
}

// faultProxy forwards TCP connections from a listener in a network namespace to an address
// in the test's own, and can black-hole them: while it does, no byte is forwarded either way
// and new connections are accepted but not connected, as across a network partition.
type faultProxy struct {
	addr     string
	upstream string
	ln       net.Listener

	mu    sync.Mutex
	open  chan struct{} // closed while forwarding
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startFaultProxy(t *testing.T, ns *netns.Namespace, upstream string) *faultProxy {
	open := make(chan struct{})
	close(open)
	p := &faultProxy{upstream: upstream, open: open, conns: map[net.Conn]struct{}{}}
	require.NoError(t, ns.Do(func() error {
		var err error
		p.ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}))
	p.addr = p.ln.Addr().String()
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

func (p *faultProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open = make(chan struct{})
}

func (p *faultProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.open)
}

func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Go(func() {
			<-p.gate()
			// Dialled from a goroutine not switched into the namespace: the test's own.
			up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
			if err != nil {
				c.Close()
				return
			}
			if !p.track(up) {
				c.Close()
				return
			}
			p.wg.Go(func() { p.pipe(up, c) })
			p.pipe(c, up)
		})
	}
}

// pipe copies src to dst, holding every chunk while the proxy black-holes, and closes both
// when either side ends.
func (p *faultProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// invariantSampler lists DaemonSets, nodes and packaged ConfigMaps every 250 ms through the
// admin client (samples fail while the API server is down) and records every moment a
// Service had two DaemonSets, a node's pod CIDR changed or two nodes shared one, or an object
// was replaced by a new one of the same name.
type invariantSampler struct {
	client kubernetes.Interface
	done   chan struct{}
	wg     sync.WaitGroup

	uids       map[string]types.UID // kind/name → UID first seen
	cidrs      map[string]string    // node → pod CIDRs first seen
	violations []string
	samples    int
}

func startInvariantSampler(t *testing.T, client kubernetes.Interface) *invariantSampler {
	s := &invariantSampler{client: client, done: make(chan struct{}), uids: map[string]types.UID{}, cidrs: map[string]string{}}
	s.wg.Go(func() {
		for {
			select {
			case <-s.done:
				return
			case <-time.After(250 * time.Millisecond):
			}
			s.sample(t.Context())
		}
	})
	t.Cleanup(s.stop)
	return s
}

func (s *invariantSampler) violate(format string, args ...any) {
	msg := time.Now().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	if !slices.Contains(s.violations, msg) && len(s.violations) < 50 {
		s.violations = append(s.violations, msg)
	}
}

func (s *invariantSampler) uid(key string, uid types.UID) {
	if first, ok := s.uids[key]; !ok {
		s.uids[key] = uid
	} else if first != uid {
		s.violate("%s was replaced (uid %s, then %s)", key, first, uid)
		s.uids[key] = uid
	}
}

func (s *invariantSampler) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	daemonSets, err := s.client.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "svccontroller.k3s.cattle.io/svcname"})
	if err != nil {
		return
	}
	nodes, err := s.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	configMaps, err := s.client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	s.samples++
	perService := map[string][]string{}
	for _, ds := range daemonSets.Items {
		svc := ds.Labels["svccontroller.k3s.cattle.io/svcname"]
		perService[svc] = append(perService[svc], ds.Name)
		s.uid("daemonset/"+ds.Name, ds.UID)
	}
	for svc, names := range perService {
		if len(names) > 1 {
			s.violate("Service %s has DaemonSets %v", svc, names)
		}
	}
	owner := map[string]string{}
	for _, n := range nodes.Items {
		s.uid("node/"+n.Name, n.UID)
		if len(n.Spec.PodCIDRs) == 0 {
			continue
		}
		cidrs := strings.Join(n.Spec.PodCIDRs, ",")
		if first, ok := s.cidrs[n.Name]; !ok {
			s.cidrs[n.Name] = cidrs
		} else if first != cidrs {
			s.violate("node %s's pod CIDRs changed from %s to %s", n.Name, first, cidrs)
		}
		if other, ok := owner[cidrs]; ok {
			s.violate("nodes %s and %s share pod CIDRs %s", other, n.Name, cidrs)
		}
		owner[cidrs] = n.Name
	}
	for _, cm := range configMaps.Items {
		if strings.HasPrefix(cm.Name, "fault-") {
			s.uid("configmap/"+cm.Name, cm.UID)
		}
	}
}

func (s *invariantSampler) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
}

func (s *invariantSampler) check(t *testing.T) {
	t.Helper()
	t.Logf("invariant samples: %d", s.samples)
	assert.NotZero(t, s.samples)
	assert.Empty(t, s.violations, "no duplicate DaemonSet, changed or shared pod CIDR, or replaced object")
}

// policyProber connects from the refused client every 100 ms and from the admitted one
// 100 ms after its previous connection.
type policyProber struct {
	denied, allowed *netns.Namespace
	target          netip.AddrPort
	done            chan struct{}
	wg              sync.WaitGroup

	deniedProbes, deniedIn, allowedProbes, allowedFailed atomic.Int64
	mu                                                   sync.Mutex
	deniedAt                                             []string
	lastAllowedErr                                       error
}

func startPolicyProber(t *testing.T, denied, allowed *netns.Namespace, target netip.AddrPort) *policyProber {
	p := &policyProber{denied: denied, allowed: allowed, target: target, done: make(chan struct{})}
	loop := func(probe func()) {
		for {
			select {
			case <-p.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			probe()
		}
	}
	// A refused probe lasts its whole timeout (the packets are dropped), so each starts on a
	// 100 ms tick of its own rather than after the previous one.
	p.wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
			p.deniedProbes.Add(1)
			p.wg.Go(func() {
				if err := p.denied.Probe(netns.TCP, p.target, 500*time.Millisecond); err == nil {
					p.deniedIn.Add(1)
					p.mu.Lock()
					p.deniedAt = append(p.deniedAt, time.Now().Format("15:04:05.000"))
					p.mu.Unlock()
				}
			})
		}
	})
	p.wg.Go(func() {
		loop(func() {
			p.allowedProbes.Add(1)
			if err := p.allowed.Probe(netns.TCP, p.target, time.Second); err != nil {
				p.allowedFailed.Add(1)
				p.mu.Lock()
				p.lastAllowedErr = err
				p.mu.Unlock()
			}
		})
	})
	t.Cleanup(p.stop)
	return p
}

func (p *policyProber) allowedNow() error {
	return p.allowed.Probe(netns.TCP, p.target, time.Second)
}

func (p *policyProber) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

func (p *policyProber) check(t *testing.T) {
	t.Helper()
	t.Logf("refused client: %d probes, %d let in; admitted client: %d probes, %d failed (last: %v)",
		p.deniedProbes.Load(), p.deniedIn.Load(), p.allowedProbes.Load(), p.allowedFailed.Load(), p.lastAllowedErr)
	assert.NotZero(t, p.deniedProbes.Load())
	assert.Zero(t, p.deniedIn.Load(), "the refused client got in at %v", p.deniedAt)
	assert.Zero(t, p.allowedFailed.Load(), "the admitted client was refused: %v", p.lastAllowedErr)
}
