package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/nodecluster"
)

// webDeployment is the test server on every node: three replicas spread one per node.
const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers:
      - name: web
        image: ` + images.TestServerImage + `
        imagePullPolicy: Never
        args: [serve, --http-port, "8080"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`

// TestRealNodes runs a server and two agents as real nodes (containerd, runc, kubelet,
// kube-proxy, the bridge CNI) and checks what a K3s user expects of them: every node gets a
// pod CIDR and its addresses and loses the uninitialized taint; a Deployment spread over the
// nodes runs with pod IPs from each node's CIDR; pods reach each other across nodes with their
// own source address; a ClusterIP and a NodePort Service answer through kube-proxy; a node
// that joins later is initialized the same way, with its pod CIDR from the ClusterCIDR that
// selects it, and its pods reachable with their own address; and an agent that restarts keeps
// its pods serving.
func TestRealNodes(t *testing.T) {
	c := nodecluster.Start(t, nodecluster.Options{Agents: 2, ServerArgs: []string{"--multi-cluster-cidr"}})
	ctx := t.Context()
	client := c.Client(t)
	t.Logf("kubectl get nodes -o wide:\n%s", c.Kubectl(t, "get", "nodes", "-o", "wide"))

	podCIDRs := map[string]netip.Prefix{}
	nodecluster.Eventually(t, time.Minute, "every node is initialized by the cloud-controller stub", func() bool {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) != 3 {
			return false
		}
		for _, n := range nodes.Items {
			if len(n.Spec.PodCIDRs) == 0 || hasTaint(&n, ccmstub.UninitializedTaint) || n.Spec.ProviderID == "" {
				return false
			}
			podCIDRs[n.Name] = netip.MustParsePrefix(n.Spec.PodCIDR)
		}
		return true
	})
	for _, n := range c.Nodes() {
		node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "k3s://"+n.Name, node.Spec.ProviderID)
		assert.Contains(t, node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: n.IP.String()})
		assert.Equal(t, n.IP.String(), node.Annotations["k3s.io/internal-ip"], "the node's agent annotates its address")
		assert.True(t, netip.MustParsePrefix("10.42.0.0/16").Contains(podCIDRs[n.Name].Addr()), "pod CIDR %s of %s", podCIDRs[n.Name], n.Name)
	}
	assert.Equal(t, "true", c.Kubectl(t, "get", "node", "server", "-o", "jsonpath={.metadata.labels.node-role\\.kubernetes\\.io/control-plane}"))

	c.Apply(t, webDeployment)
	var pods []corev1.Pod
	nodecluster.Eventually(t, 3*time.Minute, "the Deployment's three pods run, one per node", func() bool {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(list.Items) != 3 {
			return false
		}
		for _, p := range list.Items {
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || !podReady(&p) {
				return false
			}
		}
		pods = list.Items
		return true
	})
	t.Logf("kubectl get pods -o wide:\n%s", c.Kubectl(t, "get", "pods", "-o", "wide"))
	byNode := map[string]corev1.Pod{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = p
		assert.True(t, podCIDRs[p.Spec.NodeName].Contains(netip.MustParseAddr(p.Status.PodIP)),
			"pod %s on %s has %s, outside the node's pod CIDR %s", p.Name, p.Spec.NodeName, p.Status.PodIP, podCIDRs[p.Spec.NodeName])
	}
	require.Len(t, byNode, 3, "one pod per node")

	// Pod to pod across nodes: the server pod sees the client pod's own address.
	from, to := byNode["agent-1"], byNode["agent-2"]
	out := c.Kubectl(t, "exec", from.Name, "--", "/testserver", "get", "http://"+to.Status.PodIP+":8080/clientip")
	assert.True(t, strings.HasPrefix(strings.TrimSpace(out), from.Status.PodIP+":"), "source address kept across nodes: %q", out)
	out = c.Kubectl(t, "exec", byNode["server"].Name, "--", "/testserver", "get", "http://"+from.Status.PodIP+":8080/hostname")
	assert.Equal(t, from.Name, strings.TrimSpace(out), "server node's pod reaches an agent's pod")

	// The ClusterIP through kube-proxy, from a pod; the NodePort from outside, on every node.
	clusterIP := c.Kubectl(t, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
	seen := map[string]bool{}
	nodecluster.Eventually(t, time.Minute, "the ClusterIP reaches every backend", func() bool {
		out, err := c.TryKubectl("", "exec", from.Name, "--", "/testserver", "get", "http://"+clusterIP+"/hostname")
		if err == nil {
			seen[strings.TrimSpace(out)] = true
		}
		return len(seen) == 3
	})
	nodePort := c.Kubectl(t, "get", "service", "web", "-o", "jsonpath={.spec.ports[0].nodePort}")
	client0, clientIP := c.AddHost(t, "lanc")
	for _, n := range c.Nodes() {
		nodecluster.Eventually(t, time.Minute, "the NodePort answers on "+n.Name, func() bool {
			body, err := nodecluster.HTTPGet(client0, "http://"+n.IP.String()+":"+nodePort+"/hostname")
			return err == nil && strings.HasPrefix(body, "web-")
		})
	}
	t.Logf("client %s reached the NodePort %s on every node", clientIP, nodePort)

	// A node that joins later is initialized like the others; a ClusterCIDR outside
	// --cluster-cidr decides its pod addresses (K3s's docs' worker2 example).
	c.Apply(t, `apiVersion: networking.x-k8s.io/v1
kind: ClusterCIDR
metadata: {name: agent-3}
spec:
  nodeSelector:
    nodeSelectorTerms:
    - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [agent-3]}]
  perNodeHostBits: 8
  ipv4: 10.247.0.0/16
`)
	late := c.AddAgent(t, "agent-3")
	nodecluster.Eventually(t, time.Minute, "the late node gets a pod CIDR from its ClusterCIDR, its address, and loses the uninitialized taint", func() bool {
		n, err := client.CoreV1().Nodes().Get(ctx, late.Name, metav1.GetOptions{})
		return err == nil && n.Spec.PodCIDR == "10.247.0.0/24" && !hasTaint(n, ccmstub.UninitializedTaint) &&
			len(n.Status.Addresses) > 0 && n.Status.Addresses[0].Address == late.IP.String()
	})
	c.Kubectl(t, "scale", "deployment", "web", "--replicas=4")
	var latePod corev1.Pod
	nodecluster.Eventually(t, 2*time.Minute, "a pod runs on the late node", func() bool {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web", FieldSelector: "spec.nodeName=agent-3"})
		if err != nil || len(list.Items) != 1 || !podReady(&list.Items[0]) {
			return false
		}
		latePod = list.Items[0]
		return true
	})
	assert.True(t, netip.MustParsePrefix("10.247.0.0/24").Contains(netip.MustParseAddr(latePod.Status.PodIP)), "pod IP %s", latePod.Status.PodIP)
	out = c.Kubectl(t, "exec", from.Name, "--", "/testserver", "get", "http://"+latePod.Status.PodIP+":8080/clientip")
	assert.True(t, strings.HasPrefix(strings.TrimSpace(out), from.Status.PodIP+":"),
		"a ClusterCIDR's range is a pod range too: routed, and not masqueraded: %q", out)

	// An agent's restart keeps its pods running and serving.
	pod := byNode["agent-1"]
	agent1 := c.Agents[0]
	url := "http://" + pod.Status.PodIP + ":8080/hostname"
	body, err := nodecluster.HTTPGet(c.Server.NS, url)
	require.NoError(t, err)
	require.Equal(t, pod.Name, strings.TrimSpace(body))
	agent1.Stop(t)
	body, err = nodecluster.HTTPGet(c.Server.NS, url)
	require.NoError(t, err, "a stopped agent's pods keep serving")
	assert.Equal(t, pod.Name, strings.TrimSpace(body))
	agent1.Start(t)
	c.WaitReady(t)
	body, err = nodecluster.HTTPGet(c.Server.NS, url)
	require.NoError(t, err, "and after the agent is back")
	assert.Equal(t, pod.Name, strings.TrimSpace(body))
	after, err := client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, containerIDs(&pod), containerIDs(after), "the same container, not a new one")
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func containerIDs(p *corev1.Pod) string {
	out, _ := json.Marshal(func() []string {
		var ids []string
		for _, s := range p.Status.ContainerStatuses {
			ids = append(ids, s.ContainerID)
		}
		return ids
	}())
	return string(out)
}
