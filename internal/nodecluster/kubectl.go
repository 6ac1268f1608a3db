package nodecluster

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Client returns an admin client whose connections are made from the fabric namespace.
func (c *Cluster) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cfg.Dial = c.Fabric.DialContext
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	return client
}

// TryKubectl runs kubectl against the cluster from the fabric namespace.
func (c *Cluster) TryKubectl(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + c.Fabric.Path(), "--",
		filepath.Join(c.BinDir, "kubectl"), "--kubeconfig=" + c.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Kubectl is TryKubectl that fails the test on error.
func (c *Cluster) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.TryKubectl("", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Apply applies a manifest with kubectl.
func (c *Cluster) Apply(t testing.TB, manifest string) {
	t.Helper()
	if _, err := c.TryKubectl(manifest, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// Eventually polls cond every second until it holds or timeout passes, then fails the test
// naming what was awaited.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(time.Second)
	}
}

// WaitReady waits until kubectl sees every node of the cluster Ready.
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	nodes := c.Nodes()
	Eventually(t, 3*time.Minute, "every node is Ready", func() bool {
		out, err := c.TryKubectl("", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if !strings.Contains(out, n.Name+"=True\n") {
				return false
			}
		}
		return true
	})
}
