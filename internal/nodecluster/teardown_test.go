package nodecluster

import (
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

// TestTeardownLeavesNothing runs a server and an agent with a pod on each, lets the cluster's
// teardown run, and checks that no process, mount, cgroup, network namespace, shim socket,
// runtime directory or route of it is left on the machine.
func TestTeardownLeavesNothing(t *testing.T) {
	var (
		dir, runDirs, namespaces, cgroupRoots []string
		sockets                               []string
	)
	t.Run("cluster", func(t *testing.T) {
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
		dir = []string{c.dir}
		for _, n := range c.Nodes() {
			runDirs = append(runDirs, agent.NewLayout(n.DataDir).Run)
			namespaces = append(namespaces, n.NS.Name())
			cgroupRoots = append(cgroupRoots, n.CgroupRoot)
		}
		namespaces = append(namespaces, c.Fabric.Name())
		for _, cmdline := range cmdlines(t) {
			if containsAny(cmdline, runDirs) {
				sockets = append(sockets, agent.ShimSockets(cmdline)...)
			}
		}
		require.NotEmpty(t, sockets, "the pods' shims are running")
	})
	markers := append(append([]string{}, dir...), runDirs...)
	for _, cmdline := range cmdlines(t) {
		assert.False(t, containsAny(cmdline, markers), "process left: %s", cmdline)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for line := range strings.Lines(string(mountinfo)) {
		assert.False(t, containsAny(line, markers), "mount left: %s", line)
	}
	for _, d := range runDirs {
		assert.NoDirExists(t, d)
	}
	for _, ns := range namespaces {
		assert.NoFileExists(t, filepath.Join("/run/netns", ns))
	}
	for _, root := range cgroupRoots {
		left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", root))
		assert.Empty(t, left, "cgroups left")
	}
	for _, s := range sockets {
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
