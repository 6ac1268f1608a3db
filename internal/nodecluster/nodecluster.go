package nodecluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/buildcache"
	"github.com/k3snet/k3snet/internal/controlplane"
	"github.com/k3snet/k3snet/internal/gobuild"
	"github.com/k3snet/k3snet/internal/netns"
)

const (
	// readyTimeout bounds a node's start, the air-gap image import included.
	readyTimeout = 4 * time.Minute
	// stopTimeout bounds a node's exit after SIGTERM.
	stopTimeout = time.Minute
	// fabricBridge is the LAN the nodes share, in the fabric namespace.
	fabricBridge = "br0"
	// AirgapEnv names the air-gap image tarball to give every node, when not the one
	// hack/build-images.sh writes into the build cache.
	AirgapEnv = "K3SNET_AIRGAP_IMAGES"
	// airgapName is the tarball hack/build-images.sh writes, K3s's name for its own.
	airgapName = "k3s-airgap-images-" + runtime.GOARCH + ".tar"
	// InstallImagesEnv names the install tarball of deploy/ (the controllers image and the LB
	// forwarder), when not the one `hack/build-images.sh --install` writes into the build cache.
	InstallImagesEnv = "K3SNET_INSTALL_IMAGES"
	// installImagesName is the tarball `hack/build-images.sh --install` writes.
	installImagesName = "k3snet-images-" + runtime.GOARCH + ".tar"
)

// Dual-stack ranges of the cluster, K3s's docs' example ranges.
const (
	dualStackClusterCIDR = "10.42.0.0/16,fd00:42::/56"
	dualStackServiceCIDR = "10.43.0.0/16,fd00:43::/112"
)

// Options shape a cluster.
type Options struct {
	// Agents is the number of nodes joined to the server with `k3slike agent`.
	Agents int
	// ServerArgs and AgentArgs are extra k3slike flags for the server and every agent.
	ServerArgs, AgentArgs []string
	// DualStack gives the LAN, every node and the cluster IPv6 beside IPv4.
	DualStack bool
	// Images are more image tarballs every node imports at start, beside the air-gap ones.
	Images []string
	// Registered makes Start return once every node is registered instead of Ready, for a
	// cluster whose pod CIDRs come from controllers installed afterwards; WaitReady waits for
	// the rest.
	Registered bool
}

// Cluster is a running server with its agents.
type Cluster struct {
	// Fabric is the LAN's namespace; Gateway is its address.
	Fabric *netns.Namespace
	// Server is the server's node; Agents are the joined ones.
	Server *Node
	Agents []*Node
	// Kubeconfig is the admin kubeconfig (its server is the server node's address).
	Kubeconfig string
	// Token is the join token from the server's node-token.
	Token string
	// BinDir holds kubectl and the control-plane binaries.
	BinDir string

	t          testing.TB
	dualStack  bool
	images     []string
	exe        string
	nodeBinDir string
	airgap     string
	dir        string
	mu         sync.Mutex
	nextHost   netip.Addr
	hosts      []*netns.Namespace
}

// Require skips t, naming what is missing, unless this machine can run real nodes: root, the
// network tools, nsenter, and the binaries and images hack/build-tools.sh, hack/build-node.sh
// and hack/build-images.sh build. Under CI a missing piece fails the test instead.
func Require(t testing.TB) (binDir, nodeBinDir, airgap string) {
	t.Helper()
	netns.Require(t)
	var problems []string
	binDir, err := controlplane.FindBinDir()
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		for _, f := range []string{"kubectl", "kubelet", "kube-proxy"} {
			if _, err := os.Stat(filepath.Join(binDir, f)); err != nil {
				problems = append(problems, fmt.Sprintf("no %s in %s (run hack/build-tools.sh)", f, binDir))
			}
		}
	}
	if nodeBinDir, err = agent.FindNodeBinDir(); err != nil {
		problems = append(problems, err.Error())
	}
	if airgap = os.Getenv(AirgapEnv); airgap == "" {
		airgap = filepath.Join(buildcache.Dir(), "images", airgapName)
	}
	if _, err := os.Stat(airgap); err != nil {
		problems = append(problems, fmt.Sprintf("no air-gap images at %s (run hack/build-images.sh)", airgap))
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		problems = append(problems, "nsenter (util-linux) is not on PATH")
	}
	if len(problems) > 0 {
		msg := "real nodes need: " + strings.Join(problems, "; ")
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return binDir, nodeBinDir, airgap
}

// RequireInstallImages returns the install tarball of deploy/, which a test gives the nodes
// through Options.Images; like Require, it skips t naming what is missing, or fails it in CI.
func RequireInstallImages(t testing.TB) string {
	t.Helper()
	path := os.Getenv(InstallImagesEnv)
	if path == "" {
		path = filepath.Join(buildcache.Dir(), "images", installImagesName)
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("real nodes need the install images at %s (run hack/build-images.sh --install)", path)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Start brings up a server and opts.Agents agents and waits until every node is Ready. Its
// teardown runs in t.Cleanup whatever happens.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	binDir, nodeBinDir, airgap := Require(t)
	c := &Cluster{t: t, BinDir: binDir, nodeBinDir: nodeBinDir, airgap: airgap, dir: t.TempDir(), dualStack: opts.DualStack,
		images:   opts.Images,
		nextHost: netip.MustParseAddr("172.30.0.100")}
	// Registered after TempDir, so it runs first: processes, mounts and namespaces go before
	// the directory does.
	t.Cleanup(c.teardown)
	if err := agent.CheckDiskSpace(c.dir); err != nil {
		t.Fatalf("nodecluster: %v; free some space first", err)
	}
	c.exe = filepath.Join(c.dir, "k3slike")
	if out, err := gobuild.Command(c.exe, "github.com/k3snet/k3snet/examples/k3slike").CombinedOutput(); err != nil {
		t.Fatalf("building k3slike: %v\n%s", err, out)
	}
	fabric, err := netns.New(t.Context(), "fab")
	if err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	c.Fabric = fabric
	if _, err := fabric.AddBridge(t.Context(), fabricBridge); err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	for _, a := range c.lanAddrs(Gateway) {
		if err := fabric.Link(fabricBridge).AddAddr(t.Context(), a); err != nil {
			t.Fatalf("nodecluster: %v", err)
		}
	}

	c.Server = c.newNode(t, "server", netip.MustParseAddr("172.30.0.10"))
	c.Server.args = []string{"server", "--node-name=server", "--node-ip=" + c.Server.nodeIPs(),
		"--data-dir=" + c.Server.DataDir, "--bin-dir=" + binDir, "--node-bin-dir=" + nodeBinDir,
		"--kubelet-arg=cgroup-root=" + c.Server.CgroupRoot, "--metrics-bind-address=127.0.0.1:10258"}
	if opts.DualStack {
		c.Server.args = append(c.Server.args, "--cluster-cidr="+dualStackClusterCIDR, "--service-cidr="+dualStackServiceCIDR)
	}
	c.Server.args = append(c.Server.args, opts.ServerArgs...)
	c.Server.marker = "k3slike is ready"
	c.Server.Start(t)
	token, err := os.ReadFile(filepath.Join(c.Server.DataDir, "server", "node-token"))
	if err != nil {
		t.Fatalf("nodecluster: reading the join token: %v", err)
	}
	c.Token = strings.TrimSpace(string(token))
	c.Kubeconfig = filepath.Join(c.Server.DataDir, "server", "cred", "admin.kubeconfig")

	var wg sync.WaitGroup
	for i := range opts.Agents {
		n := c.newAgent(t, fmt.Sprintf("agent-%d", i+1), opts.AgentArgs)
		c.Agents = append(c.Agents, n)
		wg.Go(func() { n.start(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if !opts.Registered {
		c.WaitReady(t)
	}
	return c
}

// Nodes returns the server and the agents.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node{c.Server}, c.Agents...)
}

// teardown stops every node, runs `k3slike killall` in each, and deletes the namespaces; it
// reports what it could not remove. On failure it logs every node's last lines first.
func (c *Cluster) teardown() {
	t := c.t
	nodes := c.Nodes()
	if t.Failed() {
		for _, n := range nodes {
			if n != nil {
				t.Log(n.tail(30))
			}
		}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if nodes[i] == nil {
			continue
		}
		if err := nodes[i].stop(); err != nil {
			t.Errorf("nodecluster: %v", err)
		}
	}
	for _, n := range nodes {
		if n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, "nsenter", "--net="+n.NS.Path(), "--", c.exe, "killall", "--data-dir="+n.DataDir).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("nodecluster: k3slike killall on %s: %v\n%s", n.Name, err, out)
		}
		if err := agent.RemoveCgroupRoot(n.CgroupRoot); err != nil {
			t.Errorf("nodecluster: %v", err)
		}
	}
	var errs []error
	for _, ns := range c.hosts {
		errs = append(errs, ns.Close())
	}
	if c.Fabric != nil {
		errs = append(errs, c.Fabric.Close())
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("nodecluster: %v", err)
	}
}
