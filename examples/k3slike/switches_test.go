package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cluster is one data dir and API port that k3slike servers start on in turn.
type cluster struct {
	t        testing.TB
	exe      string
	binDir   string
	dataDir  string
	port     int
	nodeName string
	nodeIP   string
	// kubeconfig is the admin kubeconfig the tests' kubectl uses.
	kubeconfig string
	// netns, when set, is the network namespace the servers and kubectl run in; only there
	// may netpol program the firewall.
	netns string
}

// command builds a command that runs in the cluster's network namespace, if it has one.
func (c *cluster) command(name string, args ...string) *exec.Cmd {
	if c.netns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", c.netns, name}, args...)...)
}

func newCluster(t testing.TB, nodeName, nodeIP string) *cluster {
	binDir := requireBinaries(t)
	exe := buildK3slike(t)
	dataDir := t.TempDir()
	// Registered after TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		if t.Failed() {
			logControlPlaneTails(t, filepath.Join(dataDir, "server", "logs"))
		}
	})
	return &cluster{t: t, exe: exe, binDir: binDir, dataDir: dataDir, port: freePort(t), nodeName: nodeName, nodeIP: nodeIP,
		kubeconfig: filepath.Join(dataDir, "server", "cred", "admin.kubeconfig")}
}

// logControlPlaneTails logs the last lines of the embedded control plane's component logs,
// which a failing test would otherwise take with its data dir.
func logControlPlaneTails(t testing.TB, dir string) {
	const tail = 30
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		t.Logf("last lines of %s:\n%s", filepath.Base(path), strings.Join(lines[max(0, len(lines)-tail):], "\n"))
	}
}

// start runs a k3slike server on the cluster's data dir with extra flags; a later
// --metrics-bind-address wins over the free port given here. Its node is kwok's
// (--disable-agent): these tests are about the server's controllers, and real nodes have
// tests of their own (realnode_test.go).
func (c *cluster) start(extra ...string) *server {
	cmd := c.command(c.exe, c.serverArgs(append([]string{"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(freePort(c.t))}, extra...)...)...)
	return startServer(c.t, cmd.Path, cmd.Args[1:])
}

// serverArgs are the flags of a server on the cluster's data dir and kwok node, then extra.
func (c *cluster) serverArgs(extra ...string) []string {
	args := append([]string{"--disable-agent", "--data-dir=" + c.dataDir, "--https-listen-port=" + strconv.Itoa(c.port),
		"--node-name=" + c.nodeName, "--node-ip=" + c.nodeIP, "--bin-dir=" + c.binDir}, extra...)
	if c.netns == "" {
		// A server in the test machine's own network namespace leaves its firewall alone.
		args = append(args, "--disable-network-policy")
	}
	return args
}

// kubectl runs kubectl as the cluster's admin and returns its output; a failure fails the test.
func (c *cluster) kubectl(args ...string) string {
	c.t.Helper()
	out, err := c.try(args...)
	require.NoError(c.t, err)
	return out
}

// try runs kubectl and returns its error instead of failing the test, for conditions that
// assert.Eventually polls from another goroutine.
func (c *cluster) try(args ...string) (string, error) {
	out, err := c.command(filepath.Join(c.binDir, "kubectl"), append([]string{"--kubeconfig=" + c.kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// kubectlIn runs kubectl with stdin; a failure fails the test.
func (c *cluster) kubectlIn(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.kubectlStdin(stdin, args...)
	require.NoError(c.t, err)
	return out
}

// kubectlStdin runs kubectl with stdin in the cluster's namespace and returns its output.
func (c *cluster) kubectlStdin(stdin string, args ...string) (string, error) {
	cmd := c.command(filepath.Join(c.binDir, "kubectl"), append([]string{"--kubeconfig=" + c.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// names lists the objects kubectl gets, ignoring those that do not exist; nil when kubectl
// fails.
func (c *cluster) names(args ...string) []string {
	out, err := c.try(append(append([]string{"get"}, args...), "--ignore-not-found", "-o", "name")...)
	if err != nil {
		c.t.Log(err)
		return nil
	}
	return strings.Fields(out)
}

// value is kubectl get ... -o jsonpath=<path>, "" when kubectl fails.
func (c *cluster) value(path string, args ...string) string {
	out, err := c.try(append(append([]string{"get"}, args...), "-o", "jsonpath="+path)...)
	if err != nil {
		c.t.Log(err)
	}
	return out
}

func (c *cluster) eventually(what string, cond func() bool) {
	c.t.Helper()
	assert.Eventually(c.t, cond, time.Minute, 500*time.Millisecond, what)
}

// TestDisableSwitchesAcrossRestarts starts with everything on, then restarts with K3s's
// switches: what a switch turns off is removed from the cluster, and what stays on keeps
// working without being created again.
func TestDisableSwitchesAcrossRestarts(t *testing.T) {
	c := newCluster(t, "switches", "192.0.2.60")
	srv := c.start()
	c.kubectl("create", "service", "loadbalancer", "web", "--tcp=8080:80")
	c.eventually("the LoadBalancer Service gets the node IP", func() bool {
		return c.value("{.status.loadBalancer.ingress[0].ip}", "service", "web") == "192.0.2.60"
	})
	c.eventually("CoreDNS is deployed", func() bool { return len(c.names("-n", "kube-system", "deployment/coredns")) == 1 })
	daemonSets := c.names("-n", "kube-system", "daemonsets", "-l", "svccontroller.k3s.cattle.io/svcname=web")
	require.Len(t, daemonSets, 1)
	dnsUID := c.value("{.metadata.uid}", "-n", "kube-system", "deployment/coredns")
	srv.stop(t)

	// A restart with nothing changed re-creates nothing.
	srv = c.start()
	assert.Equal(t, dnsUID, c.value("{.metadata.uid}", "-n", "kube-system", "deployment/coredns"))
	assert.Equal(t, daemonSets, c.names("-n", "kube-system", "daemonsets", "-l", "svccontroller.k3s.cattle.io/svcname=web"))
	srv.stop(t)

	// --disable=servicelb removes every svclb DaemonSet at start; --disable=coredns
	// uninstalls CoreDNS and removes its manifest.
	srv = c.start("--disable=servicelb,coredns")
	assert.Empty(t, c.names("-n", "kube-system", "daemonsets", "-l", "svccontroller.k3s.cattle.io/nodeselector"),
		"no svclb DaemonSet is left")
	c.eventually("CoreDNS is uninstalled", func() bool {
		return len(c.names("-n", "kube-system", "deployment/coredns", "service/kube-dns", "configmap/coredns")) == 0
	})
	assert.NoFileExists(t, filepath.Join(c.dataDir, "server", "manifests", "coredns.yaml"))
	assert.FileExists(t, filepath.Join(c.dataDir, "server", "manifests", "traefik.yaml"), "other components stay")
	srv.stop(t)

	// With the cloud controller and ServiceLB both off no stub runs: a new node keeps the
	// uninitialized taint.
	srv = c.start("--disable=servicelb,coredns", "--disable-cloud-controller")
	assert.Empty(t, c.value(`{.metadata.annotations.k3s\.io/internal-ip}`, "node", "switches"),
		"the address annotations are removed, so an external cloud controller owns the addresses")
	c.kubectlIn(`{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1", "annotations": {"kwok.x-k8s.io/node": "fake", "k3s.io/internal-ip": "192.0.2.61"}},
		"spec": {"taints": [{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}]}}`, "create", "-f", "-")
	assert.Never(t, func() bool {
		return !strings.Contains(c.value("{.spec.taints}", "node", "worker-1"), "uninitialized")
	}, 3*time.Second, 500*time.Millisecond, "no stub runs, so the taint stays")
	srv.stop(t)
}
