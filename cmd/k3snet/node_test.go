package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/internal/compose"
	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// TestNodeKeepsItsRulesAtSIGTERMAndRemovesThemAtUninstall runs `k3snet node` in a network
// namespace of its own, which plays the node, reaching the API server through a proxy with its
// ServiceAccount's token and the roles the manifests give it. It
// annotates the node's address and programs the NetworkPolicy of a pod on it; a plain SIGTERM
// (a restart, an upgrade) leaves every rule and set, so the node keeps enforcing; once its
// namespace is being deleted (`kubectl delete -k`; the uninstall finalizer keeps its
// ServiceAccount and roles meanwhile) a SIGTERM removes every rule and set.
func TestNodeKeepsItsRulesAtSIGTERMAndRemovesThemAtUninstall(t *testing.T) {
	node := netns.NewT(t, "k3snode")
	c := cluster.Get(t)
	ctx := t.Context()
	in := install(t, c)
	ns := in.namespace

	name := testcluster.UniqueName("node")
	c.AddNodes(t, testcluster.Node(name, testcluster.PodCIDRs("10.98.0.0/24")))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: ns, Labels: map[string]string{"app": "server"}},
		Spec:       corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Name: "server", Image: "registry.k8s.io/pause:3.10"}}},
	}
	_, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-ingress", Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	_, err = c.Client.NetworkingV1().NetworkPolicies(ns).Create(ctx, policy, metav1.CreateOptions{})
	require.NoError(t, err)

	apiServer := strings.TrimPrefix(c.Config.Host, "https://")
	kubeconfig := kubeconfigWith(t, c, "https://"+proxyIntoNetns(t, node, apiServer), in.nodeToken)
	env := []string{"NODE_NAME=" + name, "NODE_IP=192.0.2.77", "POD_NAMESPACE=" + ns, "SERVICE_ACCOUNT=" + compose.NodeServiceAccount}
	start := func() *process {
		return startK3snet(t, []string{"ip", "netns", "exec", node.Name()}, env, "node", "--kubeconfig="+kubeconfig)
	}
	iptables := func() string {
		out, err := node.Exec(ctx, "iptables-save")
		require.NoError(t, err)
		return out
	}
	ipsets := func() string {
		out, err := node.Exec(ctx, "ipset", "list", "-n")
		require.NoError(t, err)
		return out
	}
	programmed := func() bool {
		rules := iptables()
		return strings.Contains(rules, "-j KUBE-ROUTER-FORWARD") && strings.Contains(rules, ":KUBE-NWPLCY-") && strings.Contains(ipsets(), "KUBE-")
	}

	p := start()
	eventually(t, "the node's address is annotated for the cloud-controller stub", func() bool {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err == nil && n.Annotations["k3s.io/internal-ip"] == "192.0.2.77"
	})
	eventually(t, "the pod's policy is programmed in the node's namespace", programmed)
	p.stop(t)
	assert.True(t, programmed(), "a plain SIGTERM leaves every rule and set: the node keeps enforcing")

	p = start()
	// Running again, so the uninstall must stop the controller before removing its rules.
	p.waitFor(t, "Starting NetworkPolicy sync")
	// `kubectl delete -k` deletes the namespace first: the pod may hear of it before its
	// ServiceAccount is marked for deletion.
	require.NoError(t, c.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	p.stop(t)
	assert.NotContains(t, iptables(), "KUBE-", "the uninstall removes every rule and chain")
	assert.NotContains(t, ipsets(), "KUBE-", "and every set")
}
