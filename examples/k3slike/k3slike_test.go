package main

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/controlplane"
	"github.com/k3snet/k3snet/internal/gobuild"
	"github.com/k3snet/k3snet/packaged/helmjob"
)

// TestServerWithEmbeddedControlPlane runs the real binary as a user would: it becomes ready,
// kubectl sees its node Ready with its addresses, pod CIDR and no uninitialized taint, CoreDNS
// and the Traefik HelmChart are deployed, the chart's helm-install job is created, a
// LoadBalancer Service gets the node IP, SIGTERM
// stops it and everything it started, and a restart on the same data dir finds the same cluster.
func TestServerWithEmbeddedControlPlane(t *testing.T) {
	c := newCluster(t, "k3slike-test", "192.0.2.50")
	healthAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	srv := c.start("--multi-cluster-cidr", "--metrics-bind-address="+healthAddr)
	c.eventually("the cloud-controller stub removes the uninitialized taint once the addresses are set", func() bool {
		return !strings.Contains(c.value("{.spec.taints}", "node", "k3slike-test"), "uninitialized")
	})
	nodes := c.kubectl("get", "nodes", "-o", "wide")
	t.Logf("kubectl get nodes -o wide:\n%s", nodes)
	assert.Regexp(t, `(?m)^k3slike-test\s+Ready\s+control-plane\s+\S+\s+\S+\s+192\.0\.2\.50\s`, nodes)
	assert.Equal(t, "k3s://k3slike-test", c.value("{.spec.providerID}", "node", "k3slike-test"))
	c.eventually("/readyz reports every controller ready", func() bool {
		resp, err := http.Get("http://" + healthAddr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), "[+]cloud-controller ok") &&
			strings.Contains(string(body), "[+]deploy ok") && strings.Contains(string(body), "[+]clustercidr ok")
	})
	c.eventually("CoreDNS and the Traefik HelmChart are deployed from the staged manifests", func() bool {
		return len(c.names("-n", "kube-system", "service/kube-dns", "deployment/coredns", "helmchart/traefik")) == 3
	})
	c.eventually("the node gets its pod CIDR from default-cluster-cidr", func() bool {
		return c.value("{.spec.podCIDR}", "node", "k3slike-test") == "10.42.0.0/24"
	})
	t.Logf("kubectl get clustercidr:\n%s", c.kubectl("get", "clustercidr"))
	assert.Equal(t, "10.42.0.0/16", c.value("{.spec.ipv4}", "clustercidr", "default-cluster-cidr"))
	assert.Equal(t, "10.43.0.10", c.value("{.spec.clusterIP}", "-n", "kube-system", "service", "kube-dns"))
	c.kubectl("create", "service", "loadbalancer", "web", "--tcp=8080:80")
	c.eventually("ServiceLB publishes the node's IP for a LoadBalancer Service", func() bool {
		return c.value("{.status.loadBalancer.ingress[0].ip}", "service", "web") == "192.0.2.50"
	})
	// kwok's node runs no pod, so the job stops at being created; the real-node tests run it.
	c.eventually("the Traefik HelmChart runs in K3s's helm-install job, on the klipper-helm image", func() bool {
		return c.value("{.status.jobName}", "-n", "kube-system", "helmchart", "traefik") == "helm-install-traefik" &&
			c.value("{.spec.template.spec.containers[0].image}", "-n", "kube-system", "job", "helm-install-traefik") == helmjob.DefaultJobImage
	})
	t.Logf("kubectl get svc -A:\n%s", c.kubectl("get", "svc", "-A"))
	resp, err := http.Get("http://" + healthAddr + "/metrics")
	require.NoError(t, err)
	scrape, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	for _, metric := range []string{"process_resident_memory_bytes", "servicelb_status_updates_total", "servicelb_served_services",
		"ccmstub_nodes_initialized_total 1", "ccmstub_uninitialized_nodes 0", "clustercidr_allocations_total"} {
		assert.Contains(t, string(scrape), "\n"+metric, "/metrics has the controllers' metrics next to the process's")
	}
	created := c.value("{.metadata.creationTimestamp}", "node", "k3slike-test")
	srv.stop(t)
	assertPortClosed(t, c.port)
	_, err = http.Get("http://" + healthAddr + "/healthz")
	assert.Error(t, err, "the health server stops with the server")

	srv = c.start()
	assert.Equal(t, created, c.value("{.metadata.creationTimestamp}", "node", "k3slike-test"),
		"a restart on the same data dir keeps the cluster")
	srv.stop(t)
	assertPortClosed(t, c.port)
}

func TestServerRejectsBadFlagsWithOneLine(t *testing.T) {
	exe := buildK3slike(t)

	cmd := exec.Command(exe, "--cluster-cidr=10.42.0.0/99", "--node-name=n")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(string(out)), "\n")+1, "one line: %q", out)
	assert.Contains(t, string(out), "invalid --cluster-cidr")
}

type server struct {
	cmd  *exec.Cmd
	done chan error
}

// startServer runs k3slike and waits for its ready line.
func startServer(t testing.TB, exe string, args []string) *server {
	t.Helper()
	cmd := exec.Command(exe, args...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &server{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	ready := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			line := scanner.Text()
			t.Log(line)
			if strings.Contains(line, "k3slike is ready") {
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		s.done <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-s.done:
		s.done <- err
		t.Fatalf("k3slike exited before it was ready: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("k3slike not ready after 3 minutes")
	}
	return s
}

// stop sends SIGTERM and expects a clean exit.
func (s *server) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		require.NoError(t, err, "k3slike should exit 0 on SIGTERM")
	case <-time.After(time.Minute):
		t.Fatal("k3slike did not stop within a minute of SIGTERM")
	}
}

func assertPortClosed(t *testing.T, port int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err == nil {
		conn.Close()
		t.Errorf("kube-apiserver still listening on %d after k3slike stopped", port)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// requireBinaries finds the control-plane binaries; without them the test is skipped, except
// under CI, which builds them.
func requireBinaries(t testing.TB) string {
	t.Helper()
	dir, err := controlplane.FindBinDir()
	if err == nil {
		if _, err = os.Stat(filepath.Join(dir, "kubectl")); err != nil {
			err = fmt.Errorf("%w: no kubectl in %s", controlplane.ErrBinariesMissing, dir)
		}
	}
	if err != nil {
		if errors.Is(err, controlplane.ErrBinariesMissing) && os.Getenv("CI") == "" {
			t.Skipf("needs the control-plane binaries: %v", err)
		}
		t.Fatal(err)
	}
	return dir
}

// TestServerThatCannotRunContainersSaysSoInOneLine starts a server whose node binaries are
// missing: it exits at once, before any control plane starts, with one line that names what
// is missing and how to run without a real node.
func TestServerThatCannotRunContainersSaysSoInOneLine(t *testing.T) {
	exe := buildK3slike(t)
	empty := t.TempDir()
	cmd := exec.Command(exe, "server", "--node-name=n", "--data-dir="+t.TempDir(), "--bin-dir="+empty, "--node-bin-dir="+empty)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	line := strings.TrimSpace(string(out))
	assert.Equal(t, 1, strings.Count(line, "\n")+1, "one line: %q", out)
	assert.Contains(t, line, "cannot run containers here")
	assert.Contains(t, line, "containerd is missing")
	assert.Contains(t, line, "--disable-agent")
}

// TestK3slikeExportsNoGoSymbols: k3slike as its tests build it (gobuild's tags) exports no Go
// symbols dynamically. Built with kustomize's Go plugin loader in a cgo build it exports every
// one (about 240,000), and its idle RSS is 6 MiB or more higher.
func TestK3slikeExportsNoGoSymbols(t *testing.T) {
	f, err := elf.Open(buildK3slike(t))
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if errors.Is(err, elf.ErrNoSymbols) {
		return // a static build: nothing exported at all
	}
	require.NoError(t, err)
	assert.Less(t, len(syms), 1000, "dynamic symbols; is %s's tag missing from the build?", gobuild.NoGoPluginsTag)
}

// buildK3slike builds this package's k3slike into a temporary directory and returns its path.
func buildK3slike(t testing.TB) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "k3slike")
	out, err := gobuild.Command(exe, ".").CombinedOutput()
	require.NoError(t, err, "building k3slike: %s", out)
	return exe
}

// TestServerLinksNoHelm: the server runs HelmCharts in K3s's jobs, on the klipper-helm image,
// so its own process carries none of the Helm SDK, whose pages would stay resident.
func TestServerLinksNoHelm(t *testing.T) {
	deps, err := gobuild.Deps()
	require.NoError(t, err)
	require.Contains(t, deps, "github.com/k3snet/k3snet/packaged/helmjob")
	assert.Empty(t, gobuild.Within(deps, gobuild.HelmTrees()...), "k3slike links Helm")
}
