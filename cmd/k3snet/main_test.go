package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3snet/k3snet/internal/gobuild"
	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// cluster is the control plane this package's integration tests share; each test keeps to
// namespaces, nodes and Lease namespaces of its own.
var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }

var (
	buildMu sync.Mutex
	builds  = map[string]string{} // build tags → binary
)

// binary builds k3snet once for the package's tests.
func binary(t testing.TB) string { return binaryWithTags(t, "") }

// binaryWithTags builds k3snet with the given build tags (such as the node build's
// k3snet_node) once for the package's tests.
func binaryWithTags(t testing.TB, tags string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if exe, ok := builds[tags]; ok {
		return exe
	}
	dir, err := os.MkdirTemp("", "k3snet-test-")
	require.NoError(t, err)
	exe := filepath.Join(dir, "k3snet")
	if out, err := gobuild.Command(exe, ".", tags).CombinedOutput(); err != nil {
		require.NoError(t, &buildError{out: string(out), err: err})
	}
	builds[tags] = exe
	return exe
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "building k3snet: " + e.err.Error() + ": " + e.out }

// process is one running k3snet.
type process struct {
	cmd  *exec.Cmd
	done chan error

	mu    sync.Mutex
	lines []string // its log so far
}

// waitFor waits until the process has logged a line containing text.
func (p *process) waitFor(t *testing.T, text string) {
	t.Helper()
	eventually(t, "k3snet logs "+strconv.Quote(text), func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return slices.ContainsFunc(p.lines, func(l string) bool { return strings.Contains(l, text) })
	})
}

// startK3snet runs k3snet with args (through wrap, such as `ip netns exec NAME`, when given)
// and extra environment, and waits for its ready line.
func startK3snet(t testing.TB, wrap []string, env []string, args ...string) *process {
	t.Helper()
	return startBinary(t, binary(t), wrap, env, args...)
}

// startBinary is startK3snet for the k3snet at exe.
func startBinary(t testing.TB, exe string, wrap []string, env []string, args ...string) *process {
	t.Helper()
	argv := append(append(slices.Clone(wrap), exe), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &process{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	ready := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stderr)
		scanner.Buffer(make([]byte, 0, 64*1024), 1024*1024)
		for scanner.Scan() {
			line := scanner.Text()
			t.Log(line)
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			if strings.Contains(line, "k3snet controllers are ready") || strings.Contains(line, "k3snet node is ready") {
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("k3snet exited before it was ready: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("k3snet not ready after 2 minutes")
	}
	return p
}

// stop sends SIGTERM and expects a clean exit.
func (p *process) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, "k3snet should exit 0 on SIGTERM")
	case <-time.After(time.Minute):
		t.Fatal("k3snet did not stop within a minute of SIGTERM")
	}
}

// kill ends the process as a crash or a lost node would: no Lease is released.
func (p *process) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
}

// pid is the process id, which names it in the Leases it holds (host_pid).
func (p *process) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// kubeconfigWith writes a copy of the admin kubeconfig of c with the server address and the
// credentials changed as given ("" keeps them), for a k3snet that reaches the API server
// through a proxy or as a ServiceAccount.
func kubeconfigWith(t testing.TB, c *testcluster.Cluster, server, token string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	require.NoError(t, err)
	for _, cl := range cfg.Clusters {
		if server != "" {
			cl.Server = server
		}
	}
	if token != "" {
		for _, u := range cfg.AuthInfos {
			u.ClientCertificate, u.ClientCertificateData, u.ClientKey, u.ClientKeyData = "", nil, "", nil
			u.Token = token
		}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// proxyIntoNetns listens on 127.0.0.1 inside ns and forwards every connection to target in
// the test's own network namespace: a k3snet run inside ns reaches the API server there.
func proxyIntoNetns(t testing.TB, ns *netns.Namespace, target string) string {
	t.Helper()
	var l net.Listener
	require.NoError(t, ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}))
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				upstream, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", target)
				if err != nil {
					return
				}
				defer upstream.Close()
				go func() { _, _ = io.Copy(upstream, conn) }()
				_, _ = io.Copy(conn, upstream)
			}()
		}
	}()
	return l.Addr().String()
}
