// Package testcluster gives integration tests a real control plane (see internal/controlplane)
// shared by all tests of one package, with helpers for namespaces and kwok-simulated nodes.
//
//	var cluster testcluster.Shared
//
//	func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		c := cluster.Get(t)
//		ns := c.Namespace(t)
//		c.AddNodes(t, testcluster.Node("node-a", testcluster.InternalIP("10.0.0.1")))
//		...
//	}
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/internal/controlplane"
)

// startTimeout bounds the whole control-plane start, cold caches included.
const startTimeout = 3 * time.Minute

// Cluster is a running control plane with an admin client.
type Cluster struct {
	// Config is an admin rest config; copy it before changing it.
	Config *rest.Config
	// Client is an admin clientset.
	Client kubernetes.Interface
	// Kubeconfig is the path of an admin kubeconfig file (for kubectl).
	Kubeconfig string
	// BinDir holds the control-plane binaries, kubectl among them.
	BinDir string

	cp  *controlplane.ControlPlane
	dir string
}

// Start starts a control plane with its state in a new temporary directory.
func Start(ctx context.Context) (*Cluster, error) {
	binDir, err := controlplane.FindBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "k3snet-testcluster-")
	if err != nil {
		return nil, fmt.Errorf("testcluster: %w", err)
	}
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: dir, BinDir: binDir})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return nil, errors.Join(err, cp.Stop(), os.RemoveAll(dir))
	}
	return &Cluster{Config: cp.Config, Client: client, Kubeconfig: cp.AdminKubeconfig, BinDir: binDir, cp: cp, dir: dir}, nil
}

// Stop stops every component and removes the cluster's files.
func (c *Cluster) Stop() error {
	return errors.Join(c.cp.Stop(), os.RemoveAll(c.dir))
}

// LogPaths returns the components' log files, for a failing test to point at.
func (c *Cluster) LogPaths() []string { return c.cp.LogPaths() }

// Shared starts one Cluster on first use and stops it when the package's tests end. The zero
// value is ready to use; declare one per test package and call Run from TestMain.
type Shared struct {
	mu      sync.Mutex
	cluster *Cluster
	err     error
	tried   bool
}

// Run runs the package's tests and stops the cluster if one was started.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster != nil {
		if err := s.cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testcluster: stopping: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		s.cluster = nil
	}
	return code
}

// Get returns the package's cluster, starting it on first use. When the binaries are not
// built the test is skipped with the reason, except under CI (CI set), where that is a failure:
// CI builds them, so a skip there would hide missing work.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tried {
		s.tried = true
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		start := time.Now()
		s.cluster, s.err = Start(ctx)
		if s.err == nil {
			t.Logf("testcluster: control plane ready in %s at %s", time.Since(start).Round(time.Millisecond), s.cluster.Config.Host)
		}
	}
	if s.err != nil {
		if errors.Is(s.err, controlplane.ErrBinariesMissing) && os.Getenv("CI") == "" {
			t.Skipf("needs the control-plane binaries: %v", s.err)
		}
		t.Fatalf("testcluster: %v", s.err)
	}
	return s.cluster
}
