package nodecluster

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/images"
)

// leftovers are what a cluster put on the machine, to look for once it is torn down.
type leftovers struct {
	Dirs, RunDirs, Namespaces, CgroupRoots, Sockets []string
}

// TestTeardownLeavesNothing runs a server and an agent with a pod on each, lets the cluster's
// teardown run, and checks that no process, mount, cgroup, network namespace, shim socket,
// runtime directory or route of it is left on the machine.
func TestTeardownLeavesNothing(t *testing.T) {
	var left leftovers
	t.Run("cluster", func(t *testing.T) { left = runPods(t) })
	assertNothingLeft(t, left)
}

// TestTeardownAfterAFailingTest runs the same cluster in a test that fails (in a child
// process of this test binary), and checks that its teardown still removed everything.
func TestTeardownAfterAFailingTest(t *testing.T) {
	if os.Getenv(failingChildEnv) != "" {
		left := runPods(t)
		out, _ := json.Marshal(left)
		fmt.Printf("%s%s\n", leftoversMarker, out)
		t.Fatal("failing on purpose, after the cluster ran pods")
	}
	Require(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestTeardownAfterAFailingTest$", "-test.v")
	cmd.Env = append(os.Environ(), failingChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the child test must fail:\n%s", out)
	var left leftovers
	for line := range strings.Lines(string(out)) {
		if data, ok := strings.CutPrefix(strings.TrimSpace(line), leftoversMarker); ok {
			require.NoError(t, json.Unmarshal([]byte(data), &left))
		}
	}
	require.NotEmpty(t, left.Dirs, "the child ran a cluster:\n%s", out)
	assert.Contains(t, string(out), "failing on purpose")
	assertNothingLeft(t, left)
}

const (
	failingChildEnv = "K3SNET_NODECLUSTER_FAILING_CHILD"
	leftoversMarker = "LEFTOVERS="
)

// runPods starts a server and an agent, runs a pod on each and returns what to look for once
// the cluster is gone.
func runPods(t *testing.T) leftovers {
	var left leftovers
	{
		c := Start(t, Options{Agents: 1})
		c.Apply(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: sleeper}
spec:
  replicas: 2
  selector: {matchLabels: {app: sleeper}}
  template:
    metadata: {labels: {app: sleeper}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: sleeper}}}
      containers: [{name: s, image: `+images.TestServerImage+`, imagePullPolicy: Never}]
`)
		Eventually(t, 3*time.Minute, "both pods run", func() bool {
			out, err := c.TryKubectl("", "get", "pods", "-l", "app=sleeper", "-o", "jsonpath={.items[*].status.phase}")
			return err == nil && out == "Running Running"
		})
		left.Dirs = []string{c.dir}
		for _, n := range c.Nodes() {
			left.RunDirs = append(left.RunDirs, agent.NewLayout(n.DataDir).Run)
			left.Namespaces = append(left.Namespaces, n.NS.Name())
			left.CgroupRoots = append(left.CgroupRoots, n.CgroupRoot)
		}
		left.Namespaces = append(left.Namespaces, c.Fabric.Name())
		for _, cmdline := range cmdlines(t) {
			if containsAny(cmdline, left.RunDirs) {
				left.Sockets = append(left.Sockets, agent.ShimSockets(cmdline)...)
			}
		}
		require.NotEmpty(t, left.Sockets, "the pods' shims are running")
	}
	return left
}

// assertNothingLeft checks the machine for anything of a torn-down cluster.
func assertNothingLeft(t *testing.T, left leftovers) {
	markers := append(append([]string{}, left.Dirs...), left.RunDirs...)
	for _, cmdline := range cmdlines(t) {
		assert.False(t, containsAny(cmdline, markers), "process left: %s", cmdline)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for line := range strings.Lines(string(mountinfo)) {
		assert.False(t, containsAny(line, markers), "mount left: %s", line)
	}
	for _, d := range append(append([]string{}, left.RunDirs...), left.Dirs...) {
		assert.NoDirExists(t, d)
	}
	for _, ns := range left.Namespaces {
		assert.NoFileExists(t, filepath.Join("/run/netns", ns))
	}
	for _, root := range left.CgroupRoots {
		left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", root))
		assert.Empty(t, left, "cgroups left")
	}
	for _, s := range left.Sockets {
		assert.NoFileExists(t, s, "shim socket left")
	}
	routes, err := exec.Command("ip", "route", "show").CombinedOutput()
	require.NoError(t, err)
	assert.NotContains(t, string(routes), Subnet.String(), "the machine's own routes are untouched")
	assert.NotContains(t, string(routes), "10.42.", "the machine's own routes are untouched")
}

// cmdlines returns every process's command line, arguments joined by spaces.
func cmdlines(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && len(b) > 0 {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func containsAny(s string, subs []string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return sub != "" && strings.Contains(s, sub) })
}
