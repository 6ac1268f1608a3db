package main

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/nodecluster"
)

// faultsWorkload is a LoadBalancer web app, a db pod on agent-1 that a policy lets only
// app=friend reach, and two would-be clients on agent-2.
const faultsWorkload = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers: [{name: web, image: ` + images.TestServerImage + `, imagePullPolicy: Never, args: [serve, --http-port, "8080"]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: db, labels: {app: db}}
spec:
  nodeName: agent-1
  containers: [{name: db, image: ` + images.TestServerImage + `, imagePullPolicy: Never, args: [serve, --http-port, "8080"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  nodeName: agent-2
  containers: [{name: c, image: ` + images.TestServerImage + `, imagePullPolicy: Never}]
---
apiVersion: v1
kind: Pod
metadata: {name: friend, labels: {app: friend}}
spec:
  nodeName: agent-2
  containers: [{name: c, image: ` + images.TestServerImage + `, imagePullPolicy: Never}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-friends}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: friend}}}]}]
`

// TestRealNodeFaults kills an agent with SIGKILL while a LAN client keeps connecting through
// its LoadBalancer address and a NetworkPolicy guards a pod on it: the pods keep serving, no
// rule of the node is lost or opened while it is down (a label change made meanwhile waits
// for it), and it reconciles when it comes back. Then the server restarts, and every add-on's
// state is as it was.
func TestRealNodeFaults(t *testing.T) {
	c := nodecluster.Start(t, nodecluster.Options{Agents: 2})
	c.Apply(t, faultsWorkload)
	agent1 := c.Agents[0]
	lb := "http://" + agent1.IP.String() + ":8080/hostname"
	lan, _ := c.AddHost(t, "lan")
	nodecluster.Eventually(t, 3*time.Minute, "the web app answers on agent-1's LoadBalancer address", func() bool {
		body, err := nodecluster.HTTPGet(lan, lb)
		return err == nil && strings.HasPrefix(body, "web-")
	})
	dbIP := c.Kubectl(t, "get", "pod", "db", "-o", "jsonpath={.status.podIP}")
	reaches := func(from string) bool {
		_, err := c.TryKubectl("", "exec", from, "--", "/testserver", "get", "--timeout", "2s", "http://"+dbIP+":8080/hostname")
		return err == nil
	}
	nodecluster.Eventually(t, 2*time.Minute, "the policy lets friend reach db", func() bool { return reaches("friend") })
	nodecluster.Eventually(t, time.Minute, "and refuses client", func() bool { return !reaches("client") })
	rulesBefore := policyState(t, agent1)

	// A LAN client connects through agent-1's LoadBalancer address every 100 ms throughout.
	var ok, failed atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var streaming sync.WaitGroup
	streaming.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := nodecluster.HTTPGet(lan, lb); err != nil {
				failed.Add(1)
				lastErr.Store(err.Error())
			} else {
				ok.Add(1)
			}
		}
	})

	agent1.Kill(t)
	c.Kubectl(t, "label", "pod", "client", "app=friend", "--overwrite")
	for range 5 {
		time.Sleep(time.Second)
		assert.False(t, reaches("client"), "while agent-1 is down its rules stay as they were: the relabelled client is still refused")
	}
	assert.True(t, reaches("friend"), "and the allowed pod still gets in")
	assert.Equal(t, rulesBefore, policyState(t, agent1), "no rule or set member of agent-1 lost or changed while it is down")

	agent1.Start(t)
	c.WaitReady(t)
	nodecluster.Eventually(t, 2*time.Minute, "agent-1 reconciles the label change made while it was down", func() bool { return reaches("client") })
	close(stop)
	streaming.Wait()
	t.Logf("LoadBalancer connections through the kill and restart: %d answered, %d failed", ok.Load(), failed.Load())
	assert.Zero(t, failed.Load(), "a connection through the LoadBalancer failed: %v", lastErr.Load())
	assert.NotZero(t, ok.Load())

	// The server's restart keeps every add-on's state.
	state := func() string {
		return c.Kubectl(t, "get", "svc", "web", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}") + "|" +
			c.Kubectl(t, "get", "pods", "-A", "-o", "jsonpath={range .items[*]}{.metadata.name}:{.status.containerStatuses[*].restartCount} {end}") + "|" +
			c.Kubectl(t, "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.podCIDR} {end}") + "|" +
			c.Kubectl(t, "get", "helmchart,addon", "-A", "-o", "name")
	}
	nodecluster.Eventually(t, 2*time.Minute, "Traefik and CoreDNS are deployed", func() bool {
		out, err := c.TryKubectl("", "get", "deploy", "-n", "kube-system", "coredns", "traefik", "-o", "jsonpath={.items[*].status.readyReplicas}")
		return err == nil && out == "1 1"
	})
	before := state()
	c.Server.Stop(t)
	c.Server.Start(t)
	c.WaitReady(t)
	after := state()
	assert.Equal(t, before, after, "the server's restart changes no add-on's state")
	body, err := nodecluster.HTTPGet(lan, lb)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(body, "web-"))
	assert.True(t, reaches("client"))
	c.Kubectl(t, "label", "pod", "client", "app=client", "--overwrite")
	nodecluster.Eventually(t, time.Minute, "policies are still enforced after the restart", func() bool { return !reaches("client") })
}

// counters are iptables-save's packet and byte counters, which change with traffic.
var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// policyState is the node's NetworkPolicy rules and sets, without counters.
func policyState(t *testing.T, n *nodecluster.Node) string {
	t.Helper()
	var b strings.Builder
	for _, cmd := range [][]string{{"iptables-save", "-t", "filter"}, {"ip6tables-save", "-t", "filter"}, {"ipset", "save"}} {
		out, err := n.NS.Exec(t.Context(), cmd[0], cmd[1:]...)
		require.NoError(t, err)
		for line := range strings.Lines(out) {
			if strings.Contains(line, "KUBE-ROUTER") || strings.Contains(line, "KUBE-POD-FW") || strings.Contains(line, "KUBE-NWPLCY") ||
				strings.Contains(line, "KUBE-SRC") || strings.Contains(line, "KUBE-DST") {
				b.WriteString(counters.ReplaceAllString(line, ""))
			}
		}
	}
	return b.String()
}
