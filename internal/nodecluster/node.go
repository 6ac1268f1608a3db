package nodecluster

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/netns"
)

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
