package testcluster_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/controlplane"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// TestStopLeavesNoProcessPortOrFile starts a control plane of its own and checks that Stop
// leaves none of its processes, listening ports or files behind.
func TestStopLeavesNoProcessPortOrFile(t *testing.T) {
	if _, err := controlplane.FindBinDir(); errors.Is(err, controlplane.ErrBinariesMissing) && os.Getenv("CI") == "" {
		t.Skipf("needs the control-plane binaries: %v", err)
	}
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("needs ss (iproute2) to list listening sockets; hack/setup.sh installs it")
	}
	// A temporary directory of its own, since other packages' clusters start meanwhile.
	t.Setenv("TMPDIR", t.TempDir())
	childrenBefore, dirsBefore := children(t), tempDirs(t)
	c, err := testcluster.Start(t.Context())
	require.NoError(t, err)
	pids := without(children(t), childrenBefore)
	dirs := without(tempDirs(t), dirsBefore)
	require.Len(t, pids, 5, "kine, kube-apiserver, kube-controller-manager, kube-scheduler and kwok")
	require.Len(t, dirs, 1, "one state directory")
	ports := listeningPorts(t, pids)
	require.NotEmpty(t, ports)
	t.Logf("processes %v listening on %v, state in %s", pids, ports, dirs[0])

	require.NoError(t, c.Stop())
	for _, pid := range pids {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "process %d still exists", pid)
	}
	// Other packages' control planes may take a freed port at once, so a port counts as left
	// only if a process of this test binary still listens on it.
	for _, port := range listeningPorts(t, append(pids, children(t)...)) {
		assert.NotContains(t, ports, port, "port %d is still taken", port)
	}
	_, err = os.Stat(dirs[0])
	assert.ErrorIs(t, err, os.ErrNotExist, "%s is left", dirs[0])
}

// children returns the PIDs of this process's children.
func children(t *testing.T) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	var pids []int
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(strings.Fields(string(data))[0])
			pids = append(pids, pid)
		}
	}
	return pids
}

// tempDirs returns the state directories of test clusters in the temporary directory.
func tempDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "k3snet-testcluster-*"))
	require.NoError(t, err)
	return dirs
}

// listeningPorts returns the TCP ports the processes pids listen on, as ss reports them.
func listeningPorts(t *testing.T, pids []int) []int {
	t.Helper()
	out, err := exec.Command("ss", "-Hltnp").Output()
	require.NoError(t, err)
	port := regexp.MustCompile(`:(\d+)\s`)
	var ports []int
	for line := range strings.Lines(string(out)) {
		for _, pid := range pids {
			if strings.Contains(line, "pid="+strconv.Itoa(pid)+",") {
				if m := port.FindStringSubmatch(line); m != nil {
					p, _ := strconv.Atoi(m[1])
					ports = append(ports, p)
				}
			}
		}
	}
	return ports
}

// without returns the elements of all that are not in drop.
func without[T comparable](all, drop []T) []T {
	var out []T
	for _, x := range all {
		if !slices.Contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}
