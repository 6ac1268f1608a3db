package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/nodecluster"
	"github.com/k3snet/k3snet/internal/procstat"
	"github.com/k3snet/k3snet/servicelb"
)

// installDir is deploy/, the kustomization a user applies with `kubectl apply -k deploy/`.
var installDir = filepath.Join("..", "..", "deploy")

// plainCluster are the flags that make k3slike a plain Kubernetes server and agents: its
// control plane and real nodes (containerd, kubelet, kube-proxy, the pod network) and none of
// k3snet's controllers, so everything k3snet does comes from what deploy/ installs. The
// kubelets allow the LB pods' forwarding sysctls, as README's install section asks of a cluster
// (one --kubelet-arg each: as in K3s, a comma splits the flag's value into two arguments).
var (
	plainKubelet = []string{"--kubelet-arg=allowed-unsafe-sysctls=net.ipv4.ip_forward",
		"--kubelet-arg=allowed-unsafe-sysctls=net.ipv6.conf.all.forwarding"}
	plainServer = append([]string{"--disable=servicelb", "--disable-cloud-controller", "--disable-network-policy",
		"--disable-node-ipam", "--disable-deploy"}, plainKubelet...)
)

// installNetpolPods are a client and a web server on two different agents, in a namespace of
// their own, for NetworkPolicy across nodes; other is a second client, on the server's node.
const installNetpolPods = `apiVersion: v1
kind: Namespace
metadata: {name: np}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: np, labels: {app: web}}
spec:
  nodeSelector: {kubernetes.io/hostname: agent-2}
  containers: [{name: c, image: ` + images.TestServerImage + `, imagePullPolicy: Never, args: [serve, --http-port, "8080"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: np, labels: {app: client}}
spec:
  nodeSelector: {kubernetes.io/hostname: agent-1}
  containers: [{name: c, image: ` + images.TestServerImage + `, imagePullPolicy: Never, args: [serve, --http-port, "8080"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: np, labels: {app: other}}
spec:
  nodeSelector: {kubernetes.io/hostname: server}
  containers: [{name: c, image: ` + images.TestServerImage + `, imagePullPolicy: Never, args: [serve, --http-port, "8080"]}]
`

// installPolicies deny every ingress to np's pods but web's from client.
const installPolicies = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: np}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-client, namespace: np}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
`

// TestInstalledOnRealNodes installs k3snet as an operator would on a cluster it did not start:
// a plain server and two agents (no k3snet controller in any k3slike), the install tarball
// imported by every node at start, `kubectl apply -k deploy/`. The installed controllers then
// do what k3slike's own do in the real-pod tests: ClusterCIDR gives the nodes their pod CIDRs
// (they become Ready only then), ServiceLB serves a Service on every node, NetworkPolicy holds
// between pods on different nodes (enforced by the node build, /k3snet-node, on every node),
// the deploy and Helm controllers run CoreDNS (which resolves
// names from a pod) and Traefik (which routes an Ingress). Deleting the leading controller
// pod hands every Lease to the other replica, with no second DaemonSet and no CIDR changed;
// `kubectl delete -k deploy/` leaves no rule, set, DaemonSet or finalizer of k3snet's.
func TestInstalledOnRealNodes(t *testing.T) {
	install := nodecluster.RequireInstallImages(t)
	c := nodecluster.Start(t, nodecluster.Options{Agents: 2, ServerArgs: plainServer, AgentArgs: plainKubelet,
		Images: []string{install}, Registered: true})
	client := c.Client(t)
	ctx := t.Context()
	dumpOnFailure(t, c, []string{"-n", compose.DefaultNamespace, "get", "pods", "-o", "wide"},
		[]string{"-n", compose.DefaultNamespace, "logs", "-l", "app.kubernetes.io/part-of=k3snet", "--tail=40", "--prefix"})

	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, n := range nodes.Items {
		require.Empty(t, n.Spec.PodCIDRs, "before the install nothing allocates %s's pod CIDRs", n.Name)
	}
	for _, n := range c.Nodes() {
		tables, sets := nodeRules(t, n)
		require.Empty(t, netpolLeftovers(tables, sets), "before the install %s has no NetworkPolicy rule", n.Name)
	}

	c.Kubectl(t, "apply", "-k", installDir)
	c.WaitReady(t)
	c.Kubectl(t, "-n", compose.DefaultNamespace, "rollout", "status", "--timeout=3m", "daemonset/k3snet-node")
	c.Kubectl(t, "-n", compose.DefaultNamespace, "rollout", "status", "--timeout=3m", "deployment/k3snet-controllers")

	cidrs := podCIDRs(t, c)
	t.Run("ClusterCIDR gives every node a pod CIDR of its own from the cluster CIDR", func(t *testing.T) {
		cluster := netip.MustParsePrefix("10.42.0.0/16")
		seen := map[string]string{}
		for name, cidr := range cidrs {
			p, err := netip.ParsePrefix(cidr)
			require.NoError(t, err, name)
			assert.True(t, p.Bits() == 24 && cluster.Contains(p.Addr()), "%s: %s is a /24 of %s", name, p, cluster)
			assert.Empty(t, seen[cidr], "%s and %s share %s", name, seen[cidr], cidr)
			seen[cidr] = name
		}
		assert.Len(t, cidrs, len(c.Nodes()))
	})

	lb := newLBCluster(t, c)
	all := c.Nodes()
	t.Run("ServiceLB serves a LoadBalancer Service on every node", func(t *testing.T) {
		c.Apply(t, lbBackends)
		c.Apply(t, lbService("echo", "echo", portEcho, ""))
		lb.waitServed(t, "echo", corev1.LoadBalancerIPModeVIP, singleStack, all...)
		for _, n := range all {
			lb.eventuallyAnswers(t, lb.lan, n.IP, portEcho, "/hostname", func(body string) bool { return strings.HasPrefix(body, "echo-") })
		}
	})

	c.Apply(t, installNetpolPods)
	nodecluster.Eventually(t, 3*time.Minute, "np's pods run", func() bool {
		out, err := c.TryKubectl("", "-n", "np", "get", "pods", "-o", "jsonpath={.items[*].status.phase}")
		return err == nil && out == "Running Running Running"
	})
	web := c.PodIPs(t, "np", "web")[0]
	fromClient := c.PodNamespace(t, c.PodIPs(t, "np", "client")[0])
	fromOther := c.PodNamespace(t, c.PodIPs(t, "np", "other")[0])
	webURL := "http://" + netip.AddrPortFrom(web, 8080).String() + "/hostname"

	t.Run("CoreDNS, deployed by the installed deploy controller, resolves names from a pod", func(t *testing.T) {
		apiIP := c.Kubectl(t, "get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
		want := map[string]string{"kubernetes.default.svc.cluster.local": apiIP, "agent-2": c.Agents[1].IP.String()}
		for name, ip := range want {
			var last string
			nodecluster.Eventually(t, 4*time.Minute, "np/client resolves "+name+" to "+ip, func() bool {
				out, err := c.TryKubectl("", "-n", "np", "exec", "client", "--", "/testserver", "lookup", name)
				last = fmt.Sprintf("%q (%v)", out, err)
				return err == nil && strings.TrimSpace(out) == ip
			})
			t.Logf("%s: %s", name, last)
		}
	})

	t.Run("NetworkPolicy holds between pods on different nodes", func(t *testing.T) {
		nodecluster.Eventually(t, time.Minute, "with no policy, client and other reach web", func() bool {
			_, err1 := nodecluster.HTTPGet(fromClient, webURL)
			_, err2 := nodecluster.HTTPGet(fromOther, webURL)
			return err1 == nil && err2 == nil
		})
		c.Apply(t, installPolicies)
		nodecluster.Eventually(t, time.Minute, "other (server's node) is refused, client (agent-1) still reaches web (agent-2)", func() bool {
			_, errOther := nodecluster.HTTPGet(fromOther, webURL)
			body, errClient := nodecluster.HTTPGet(fromClient, webURL)
			return errOther != nil && errClient == nil && body == "web"
		})
		c.Kubectl(t, "-n", "np", "delete", "networkpolicy", "web-from-client")
		nodecluster.Eventually(t, time.Minute, "without the allow policy client is refused too", func() bool {
			_, err := nodecluster.HTTPGet(fromClient, webURL)
			return err != nil
		})
	})

	t.Run("every node pod runs the node build, which leaves out the controllers", func(t *testing.T) {
		for _, n := range all {
			p := nodePodProcess(t, n)
			assert.Equal(t, images.NodeProgram, p.argv[0], "%s runs %v", n.Name, p.argv)
			// The RSS after the NetworkPolicy steps, for the docs' figures; no assertion on it.
			if mem, err := procstat.ReadMemory(p.pid); err == nil {
				t.Logf("%s: %s, RSS %.1f MiB (file %.1f, anon %.1f), peak %.1f MiB", n.Name, strings.Join(p.argv, " "), mem.RSS, mem.File, mem.Anon, mem.Peak)
			}
		}
		out, err := c.TryKubectl("", "-n", compose.DefaultNamespace, "exec", "daemonset/k3snet-node", "--", images.NodeProgram, "controllers")
		require.Error(t, err, "the node build refuses controllers: %s", out)
		assert.Contains(t, out, "this k3snet is the node build")
	})

	t.Run("Traefik, installed by the installed Helm controller, routes an Ingress on every node", func(t *testing.T) {
		nodecluster.Eventually(t, 5*time.Minute, "Traefik runs and its IngressRoute CRD is served", func() bool {
			out, err := c.TryKubectl("", "-n", "kube-system", "get", "deployment", "traefik", "-o", "jsonpath={.status.readyReplicas}")
			if err != nil || out != "1" {
				return false
			}
			_, err = c.TryKubectl("", "get", "crd", "ingressroutes.traefik.io")
			return err == nil
		})
		c.Apply(t, traefikBackend)
		for _, n := range all {
			url := "http://" + n.IP.String() + "/hostname"
			nodecluster.Eventually(t, 3*time.Minute, "Traefik routes ingress.k3snet.test through "+n.Name, func() bool {
				body, err := getWithHost(lb.lan, url, "ingress.k3snet.test")
				return err == nil && strings.HasPrefix(body, "whoami-")
			})
		}
	})

	t.Run("deleting the leading controller pod hands every Lease to the other replica, with no second DaemonSet and no CIDR changed", func(t *testing.T) {
		before := lbDaemonSets(t, c)
		require.Len(t, before, 2, "one DaemonSet for echo, one for traefik")
		// The replicas may share the Leases between them: the one deleted is ServiceLB's leader.
		leases := leaseRenewals(t, c)
		require.Len(t, leases, 3, "cloud-controller, clustercidr and packaged are led: %v", leases)
		old := podOf(leases[compose.LeasePrefix+"cloud-controller"].identity)
		start := time.Now()
		c.Kubectl(t, "-n", compose.DefaultNamespace, "delete", "pod", old, "--wait=false")
		var took time.Duration
		nodecluster.Eventually(t, 2*compose.LeaseDuration, "other replicas hold every Lease", func() bool {
			now := leaseRenewals(t, c)
			for _, h := range now {
				if h.identity == "" || podOf(h.identity) == old {
					return false
				}
			}
			took = time.Since(start)
			return len(now) == len(leases)
		})
		t.Logf("takeover: %s after the pod's deletion", took.Round(100*time.Millisecond))

		// A leader that dies without releasing its Leases (SIGKILL) is replaced: each Lease is
		// renewed after the kill by a live process, another replica once the Lease expired
		// or the pod's restarted container (its process is pid 1 again, so the same holder).
		old = podOf(leaseRenewals(t, c)[compose.LeasePrefix+"cloud-controller"].identity)
		killControllersOf(t, old)
		start = time.Now()
		var holders map[string]leaseHolder
		nodecluster.Eventually(t, 3*compose.LeaseDuration, "every Lease is renewed after the leader's SIGKILL", func() bool {
			holders = leaseRenewals(t, c)
			for _, h := range holders {
				if !h.renewed.After(start) {
					return false
				}
			}
			took = time.Since(start)
			return len(holders) > 0
		})
		t.Logf("takeover: %s after the leader's SIGKILL (Lease duration %s): %v", took.Round(100*time.Millisecond), compose.LeaseDuration, holders)
		// The new leader's controllers have synced and reconciled once more by the time the LB answers.
		for _, n := range all {
			lb.eventuallyAnswers(t, lb.lan, n.IP, portEcho, "/hostname", func(body string) bool { return strings.HasPrefix(body, "echo-") })
		}
		c.Apply(t, lbService("echo2", "echo", portEcho+10, ""))
		lb.waitServed(t, "echo2", corev1.LoadBalancerIPModeVIP, singleStack, all...)
		after := lbDaemonSets(t, c)
		for name, uid := range before {
			assert.Equal(t, uid, after[name], "DaemonSet %s is the same object", name)
		}
		assert.Len(t, after, 3, "one more DaemonSet, echo2's, and no other: %v", after)
		assert.Equal(t, cidrs, podCIDRs(t, c), "no node's pod CIDR changed")
	})

	t.Run("kubectl delete -k deploy/ leaves no rule, set, DaemonSet or finalizer of k3snet's", func(t *testing.T) {
		c.Kubectl(t, "delete", "-k", installDir, "--timeout=5m")
		_, err := client.CoreV1().Namespaces().Get(ctx, compose.DefaultNamespace, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "namespace %s is gone: %v", compose.DefaultNamespace, err)
		assert.Empty(t, lbDaemonSets(t, c), "no LB DaemonSet is left")
		services, err := client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for _, s := range services.Items {
			assert.NotContains(t, s.Finalizers, servicelb.LoadBalancerCleanupFinalizer, "Service %s/%s", s.Namespace, s.Name)
		}
		for _, kind := range []string{"clusterroles", "clusterrolebindings"} {
			out := c.Kubectl(t, "get", kind, "-l", compose.PartOfLabel+"="+compose.PartOfValue, "-o", "name")
			assert.Empty(t, out, "no %s of k3snet is left", kind)
		}
		for _, n := range all {
			tables, sets := nodeRules(t, n)
			assert.Empty(t, netpolLeftovers(tables, sets), "%s keeps no NetworkPolicy rule or set", n.Name)
		}
		// The pods keep their addresses, and with no policy left web answers everyone again.
		nodecluster.Eventually(t, time.Minute, "other reaches web again", func() bool {
			_, err := nodecluster.HTTPGet(fromOther, webURL)
			return err == nil
		})
	})
}

// podCIDRs returns each node's pod CIDRs by node name, comma-joined.
func podCIDRs(t *testing.T, c *nodecluster.Cluster) map[string]string {
	t.Helper()
	nodes, err := c.Client(t).CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]string{}
	for _, n := range nodes.Items {
		out[n.Name] = strings.Join(n.Spec.PodCIDRs, ",")
	}
	return out
}

// lbDaemonSets returns ServiceLB's DaemonSets by name, with their UIDs.
func lbDaemonSets(t *testing.T, c *nodecluster.Cluster) map[string]types.UID {
	t.Helper()
	list, err := c.Client(t).AppsV1().DaemonSets(servicelb.DefaultNamespace).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]types.UID{}
	for _, ds := range list.Items {
		if strings.HasPrefix(ds.Name, "svclb-") {
			out[ds.Name] = ds.UID
		}
	}
	return out
}

// podOf is the pod of a Lease holder identity, LeaderIdentity's <pod>_<pid>.
func podOf(identity string) string {
	if i := strings.LastIndex(identity, "_"); i > 0 {
		return identity[:i]
	}
	return identity
}

// leaseHolder is who holds a Lease and when they last renewed it.
type leaseHolder struct {
	identity string
	renewed  time.Time
}

func (h leaseHolder) String() string { return h.identity }

// leaseRenewals returns the holder of each of k3snet's controller Leases.
func leaseRenewals(t *testing.T, c *nodecluster.Cluster) map[string]leaseHolder {
	t.Helper()
	leases, err := c.Client(t).CoordinationV1().Leases(compose.DefaultNamespace).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]leaseHolder{}
	for _, l := range leases.Items {
		if strings.HasPrefix(l.Name, compose.LeasePrefix) && l.Spec.HolderIdentity != nil && l.Spec.RenewTime != nil {
			out[l.Name] = leaseHolder{identity: *l.Spec.HolderIdentity, renewed: l.Spec.RenewTime.Time}
		}
	}
	return out
}

// podProcess is a process of this machine: the nodes share its process table.
type podProcess struct {
	pid        int
	argv, env  []string
	cgroupPath string
}

// podProcesses returns the processes whose command line satisfies match, with their
// environment and cgroups.
func podProcesses(t *testing.T, match func(argv []string) bool) []podProcess {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	require.NoError(t, err)
	var out []podProcess
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if !match(argv) {
			continue
		}
		environ, errEnv := os.ReadFile(filepath.Join(p, "environ"))
		cgroup, errCgroup := os.ReadFile(filepath.Join(p, "cgroup"))
		pid, err := strconv.Atoi(filepath.Base(p))
		if errEnv != nil || errCgroup != nil || err != nil {
			continue // gone meanwhile
		}
		out = append(out, podProcess{pid: pid, argv: argv, env: strings.Split(string(environ), "\x00"), cgroupPath: string(cgroup)})
	}
	return out
}

// killControllersOf sends SIGKILL to the `k3snet controllers` process of the pod named pod: the
// nodes share this machine's process table, and the pod's process has POD_NAME=pod.
func killControllersOf(t *testing.T, pod string) {
	t.Helper()
	for _, p := range podProcesses(t, func(argv []string) bool { return len(argv) > 1 && argv[0] == "/k3snet" && argv[1] == "controllers" }) {
		if !slices.Contains(p.env, "POD_NAME="+pod) {
			continue
		}
		require.NoError(t, syscall.Kill(p.pid, syscall.SIGKILL))
		t.Logf("killed %s's controllers, pid %d", pod, p.pid)
		return
	}
	t.Fatalf("no k3snet controllers process of pod %s", pod)
}

// nodePodProcess returns the `node` process of the k3snet node pod on n, whichever binary
// runs it: the one in n's kubelet cgroup root with the node ServiceAccount.
func nodePodProcess(t *testing.T, n *nodecluster.Node) podProcess {
	t.Helper()
	var found []podProcess
	for _, p := range podProcesses(t, func(argv []string) bool { return len(argv) > 1 && argv[1] == "node" }) {
		if strings.Contains(p.cgroupPath, n.CgroupRoot+"/") && slices.Contains(p.env, "SERVICE_ACCOUNT="+compose.NodeServiceAccount) {
			found = append(found, p)
		}
	}
	require.Len(t, found, 1, "one k3snet node process on %s", n.Name)
	return found[0]
}
