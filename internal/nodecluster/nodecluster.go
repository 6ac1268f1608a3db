package nodecluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/buildcache"
	"github.com/k3snet/k3snet/internal/controlplane"
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

// Subnet is every cluster's LAN. Each cluster has a fabric namespace of its own, so clusters
// running side by side never see each other's addresses.
var Subnet = netip.MustParsePrefix("172.30.0.0/24")

// Gateway is the fabric's own address on the LAN: where tests talk to the cluster from.
var Gateway = netip.MustParseAddr("172.30.0.1")

// Subnet6 is the LAN's IPv6 range in a dual-stack cluster: every machine on the LAN has
// fd30::<n> beside 172.30.0.<n> (IPv6Of).
var Subnet6 = netip.MustParsePrefix("fd30::/64")

// IPv6Of is the IPv6 address of the LAN machine whose IPv4 address is ip: fd30::<n> for
// 172.30.0.<n>, written with the same digits.
func IPv6Of(ip netip.Addr) netip.Addr {
	return netip.MustParseAddr("fd30::" + strconv.Itoa(int(ip.As4()[3])))
}

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

// Node is one real node of the cluster.
type Node struct {
	// Name is the node's name; IP its address on the LAN, IP6 its IPv6 one in a dual-stack
	// cluster.
	Name    string
	IP, IP6 netip.Addr
	// NS is the node's network namespace, where its processes, pods' host side and rules are.
	NS *netns.Namespace
	// DataDir is the node's --data-dir.
	DataDir string
	// CgroupRoot is the kubelet's --cgroup-root, unique to the node.
	CgroupRoot string

	c *Cluster
	// args are the k3slike arguments of the current run; baseArgs those Start began with,
	// which StartWith adds to.
	args, baseArgs []string
	logPath        string
	marker         string
	cmd            *exec.Cmd
	done           chan error
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
	c.exe = filepath.Join(c.dir, "k3slike")
	if out, err := exec.Command("go", "build", "-o", c.exe, "github.com/k3snet/k3snet/examples/k3slike").CombinedOutput(); err != nil {
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

// AddAgent joins one more node, with extra flags, and waits until it is Ready.
func (c *Cluster) AddAgent(t testing.TB, name string, extra ...string) *Node {
	t.Helper()
	n := c.newAgent(t, name, extra)
	c.mu.Lock()
	c.Agents = append(c.Agents, n)
	c.mu.Unlock()
	n.Start(t)
	c.WaitReady(t)
	return n
}

func (c *Cluster) newAgent(t testing.TB, name string, extra []string) *Node {
	c.mu.Lock()
	ip := netip.MustParseAddr("172.30.0." + strconv.Itoa(11+len(c.Agents)))
	c.mu.Unlock()
	n := c.newNode(t, name, ip)
	n.args = append([]string{"agent", "--server=https://" + net.JoinHostPort(c.Server.IP.String(), "6443"), "--token=" + c.Token,
		"--node-name=" + name, "--node-ip=" + n.nodeIPs(), "--data-dir=" + n.DataDir, "--bin-dir=" + c.BinDir,
		"--node-bin-dir=" + c.nodeBinDir, "--kubelet-arg=cgroup-root=" + n.CgroupRoot}, extra...)
	n.marker = "k3slike agent is ready"
	return n
}

// newNode makes a node's namespace on the fabric, its data dir with the air-gap images, and
// its cgroup root's name.
func (c *Cluster) newNode(t testing.TB, name string, ip netip.Addr) *Node {
	t.Helper()
	ctx := t.Context()
	ns, err := netns.New(ctx, "k3sn")
	if err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	n := &Node{Name: name, IP: ip, NS: ns, c: c, DataDir: filepath.Join(c.dir, name), CgroupRoot: "/k3snet-" + ns.Name()}
	if c.dualStack {
		n.IP6 = IPv6Of(ip)
	}
	c.mu.Lock()
	c.hosts = append(c.hosts, ns)
	c.mu.Unlock()
	// The peer is created in the fabric under a per-node name, then enslaved to the bridge.
	eth0, peer, err := ns.AddVeth(ctx, "eth0", c.Fabric, "v"+strings.TrimPrefix(ns.Name(), "k3sn"))
	if err == nil {
		err = peer.SetMaster(ctx, c.Fabric.Link(fabricBridge))
	}
	for _, a := range c.lanAddrs(ip) {
		if err == nil {
			err = eth0.AddAddr(ctx, a)
		}
		if err == nil {
			err = ns.AddDefaultRoute(ctx, c.gateway(a.Addr()))
		}
	}
	if err != nil {
		t.Fatalf("nodecluster: wiring node %s: %v", name, err)
	}
	images := filepath.Join(n.DataDir, "agent", "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	links := map[string]string{airgapName: c.airgap}
	for _, tarball := range c.images {
		links[filepath.Base(tarball)] = tarball
	}
	for name, tarball := range links {
		if err := os.Symlink(tarball, filepath.Join(images, name)); err != nil {
			t.Fatalf("nodecluster: %v", err)
		}
	}
	n.logPath = filepath.Join(c.dir, name+".log")
	return n
}

// AddHost attaches a namespace to the LAN with the next free address and a default route to
// the fabric: a machine outside the cluster, as a client of its Services.
func (c *Cluster) AddHost(t testing.TB, prefix string) (*netns.Namespace, netip.Addr) {
	t.Helper()
	ctx := t.Context()
	ns, err := netns.New(ctx, prefix)
	if err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	c.mu.Lock()
	c.hosts = append(c.hosts, ns)
	ip := c.nextHost
	c.nextHost = c.nextHost.Next()
	c.mu.Unlock()
	eth0, peer, err := ns.AddVeth(ctx, "eth0", c.Fabric, "h"+strings.TrimPrefix(ns.Name(), prefix))
	if err == nil {
		err = peer.SetMaster(ctx, c.Fabric.Link(fabricBridge))
	}
	for _, a := range c.lanAddrs(ip) {
		if err == nil {
			err = eth0.AddAddr(ctx, a)
		}
	}
	if err != nil {
		t.Fatalf("nodecluster: wiring host %s: %v", ns.Name(), err)
	}
	return ns, ip
}

// lanAddrs are the LAN addresses of the machine whose IPv4 address is ip: that one, and in a
// dual-stack cluster its IPv6 twin.
func (c *Cluster) lanAddrs(ip netip.Addr) []netip.Prefix {
	out := []netip.Prefix{netip.PrefixFrom(ip, Subnet.Bits())}
	if c.dualStack {
		out = append(out, netip.PrefixFrom(IPv6Of(ip), Subnet6.Bits()))
	}
	return out
}

// gateway is the fabric's address of ip's family.
func (c *Cluster) gateway(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		return IPv6Of(Gateway)
	}
	return Gateway
}

// nodeIPs is the node's --node-ip value.
func (n *Node) nodeIPs() string {
	if n.IP6.IsValid() {
		return n.IP.String() + "," + n.IP6.String()
	}
	return n.IP.String()
}

// Start runs the node's k3slike (again, after Stop) and waits for its ready line.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	n.start(t)
	if t.Failed() {
		t.FailNow()
	}
}

// StartWith runs the node's k3slike (after Stop) with extra flags added to the ones it first
// started with, as a user restarts K3s with a changed configuration.
func (n *Node) StartWith(t testing.TB, extra ...string) {
	t.Helper()
	n.args = append(slices.Clone(n.baseArgs), extra...)
	n.Start(t)
}

// start is Start for goroutines: it reports failures with Errorf.
func (n *Node) start(t testing.TB) {
	if n.baseArgs == nil {
		n.baseArgs = slices.Clone(n.args)
	}
	log, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Errorf("nodecluster: %v", err)
		return
	}
	offset, _ := log.Seek(0, 2)
	cmd := exec.Command("nsenter", append([]string{"--net=" + n.NS.Path(), "--", n.c.exe}, n.args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	// Killed with the test binary, so a crashed test leaves no node running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Errorf("nodecluster: starting %s: %v", n.Name, err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	n.cmd, n.done = cmd, done
	deadline := time.Now().Add(readyTimeout)
	for {
		if text, _ := readFrom(n.logPath, offset); strings.Contains(text, n.marker) {
			return
		}
		select {
		case err := <-done:
			n.done <- err
			t.Errorf("nodecluster: %s exited before it was ready: %v\n%s", n.Name, err, n.tail(40))
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Errorf("nodecluster: %s not ready after %s\n%s", n.Name, readyTimeout, n.tail(40))
			return
		}
	}
}

// Stop sends SIGTERM and waits for a clean exit; the node's pods keep running, as in K3s.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	if err := n.stop(); err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
}

func (n *Node) stop() error {
	if n.cmd == nil {
		return nil
	}
	defer func() { n.cmd = nil }()
	select {
	case err := <-n.done:
		return fmt.Errorf("%s had already exited: %v", n.Name, err)
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		if err != nil {
			return fmt.Errorf("%s exited with %v after SIGTERM\n%s", n.Name, err, n.tail(20))
		}
		return nil
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM", n.Name, stopTimeout)
	}
}

// Kill kills the node's k3slike with SIGKILL, as `kill -9` would: its containerd, kubelet and
// kube-proxy die with it, its pods and rules stay. Start brings it back.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	if n.cmd == nil {
		t.Fatalf("nodecluster: %s is not running", n.Name)
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(stopTimeout):
		t.Fatalf("nodecluster: %s still running %s after SIGKILL", n.Name, stopTimeout)
	}
	n.cmd = nil
	// Its children die on their own parent-death signal; wait until they are gone, so a
	// restart does not meet a containerd still holding its socket.
	markers := []string{agent.NewLayout(n.DataDir).ContainerdSocket, agent.NewLayout(n.DataDir).ContainerdConfig}
	Eventually(t, stopTimeout, n.Name+"'s node processes are gone", func() bool {
		return len(processesWith(markers, "containerd-shim")) == 0
	})
}

// processesWith lists the command lines containing one of markers, except those of programs
// whose name contains skip.
func processesWith(markers []string, skip string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(strings.Fields(cmd)[0], skip) {
			continue
		}
		for _, m := range markers {
			if strings.Contains(cmd, m) {
				out = append(out, cmd)
				break
			}
		}
	}
	return out
}

// Log returns what the node's k3slike printed so far.
func (n *Node) Log() string {
	text, _ := readFrom(n.logPath, 0)
	return text
}

// tail returns the last lines of the node's k3slike log and of its node processes' logs.
func (n *Node) tail(lines int) string {
	var b strings.Builder
	files := []string{n.logPath}
	more, _ := filepath.Glob(filepath.Join(n.DataDir, "agent", "logs", "*.log"))
	files = append(files, more...)
	for _, f := range files {
		text, _ := readFrom(f, 0)
		all := strings.Split(strings.TrimRight(text, "\n"), "\n")
		fmt.Fprintf(&b, "--- last lines of %s (%s)\n%s\n", filepath.Base(f), n.Name, strings.Join(all[max(0, len(all)-lines):], "\n"))
	}
	return b.String()
}

func readFrom(path string, offset int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String(), sc.Err()
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

// Client returns an admin client whose connections are made from the fabric namespace.
func (c *Cluster) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	var d net.Dialer
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := c.Fabric.Do(func() error {
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
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
