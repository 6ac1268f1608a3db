package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/proc"
)

// containerdReadyTimeout bounds the wait for containerd's socket; it answers within a second
// or two once started.
const containerdReadyTimeout = time.Minute

// Agent is a running node: containerd, the kubelet and kube-proxy.
type Agent struct {
	layout Layout
	procs  []*proc.Process // in start order
	exited chan error
}

// Start prepares the node (sysctls, cgroups, directories, configuration files), starts
// containerd, imports the air-gap images, then starts the kubelet and kube-proxy, and returns.
// On error whatever it started is stopped again. A preflight failure wraps
// ErrCannotRunContainers.
func Start(ctx context.Context, c *Config) (_ *Agent, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx)
	l := NewLayout(c.DataDir)
	if free, err := FreePercent(c.DataDir); err == nil {
		if problem := diskSpaceProblem(c.DataDir, free); problem != nil {
			// Warned, not refused: the kubelet keeps the node up and frees what it can, as in K3s.
			logger.Info("Warning: pods on this node will be evicted", "reason", problem.Error())
		}
	}
	bins := findNodeBinaries(c)
	facts, err := preflight(bins)
	if err != nil {
		return nil, err
	}
	if err := setSysctls("/proc/sys", nodeSysctls(c.ClusterCIDRs)); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if root, ok := argValue(c.KubeletArgs, "cgroup-root"); ok {
		if err := ensureCgroupRoot(root); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	for _, d := range []string{l.Agent, l.Containerd, filepath.Dir(l.ContainerdConfig), l.ContainerdState, l.CNIConfDir,
		l.Images, l.Kubelet, l.PodLogs, l.PodManifests, l.Logs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("agent: creating %s: %w", d, err)
		}
	}
	a := &Agent{layout: l, exited: make(chan error, 3)}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.Stop())
		}
	}()

	containerdConfig := renderContainerdConfig(l, containerdSettings{
		runc: bins.runc, cniBinDir: bins.cniDir, sandboxImage: c.SandboxImage, restrictOOMScoreAdj: facts.restrictOOMScoreAdj,
	})
	if err := writeFile(l.ContainerdConfig, []byte(containerdConfig)); err != nil {
		return nil, err
	}
	// containerd finds the runc shim on its PATH.
	env := append(os.Environ(), "PATH="+bins.shimDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	containerd, err := a.start("containerd", bins.containerd, []string{"--config", l.ContainerdConfig}, proc.Options{Env: env})
	if err != nil {
		return nil, err
	}
	if err := waitForSocket(ctx, containerd, l.ContainerdSocket); err != nil {
		return nil, err
	}
	if err := importImages(ctx, bins.ctr, l.ContainerdSocket, l.Images); err != nil {
		return nil, err
	}

	kubeletConfigFile := filepath.Join(l.Agent, "etc", "kubelet.yaml")
	kubeletYAML, err := renderKubeletConfig(c, l, facts.cgroupV1)
	if err != nil {
		return nil, err
	}
	if err := writeFile(kubeletConfigFile, kubeletYAML); err != nil {
		return nil, err
	}
	if _, err := a.start("kubelet", bins.kubelet, kubeletArgs(c, l, kubeletConfigFile), proc.Options{}); err != nil {
		return nil, err
	}

	kubeProxyConfigFile := filepath.Join(l.Agent, "etc", "kube-proxy.yaml")
	kubeProxyYAML, err := renderKubeProxyConfig(c, facts.restrictOOMScoreAdj)
	if err != nil {
		return nil, err
	}
	if err := writeFile(kubeProxyConfigFile, kubeProxyYAML); err != nil {
		return nil, err
	}
	if _, err := a.start("kube-proxy", bins.kubeProxy, kubeProxyArgs(c, kubeProxyConfigFile), proc.Options{}); err != nil {
		return nil, err
	}
	logger.Info("Node processes started", "node", c.NodeName, "logs", l.Logs, "containerd", l.ContainerdSocket)
	return a, nil
}

// start runs one node process and reports its exit on a.exited.
func (a *Agent) start(name, bin string, args []string, opts proc.Options) (*proc.Process, error) {
	p, err := proc.Start(name, bin, args, a.layout.Logs, opts)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.procs = append(a.procs, p)
	go func() {
		<-p.Done()
		_, err := p.Exited()
		a.exited <- err
	}()
	return p, nil
}

// Exited delivers an error for every node process that ends, including at Stop. A server or
// agent treats an unexpected one as fatal, as K3s does when its kubelet or containerd dies.
func (a *Agent) Exited() <-chan error { return a.exited }

// Layout is where the agent keeps its files.
func (a *Agent) Layout() Layout { return a.layout }

// Stop stops kube-proxy, the kubelet and containerd, in that order. Pods keep running, as
// when K3s stops: their shims and containers live on until Killall.
func (a *Agent) Stop() error {
	var errs []error
	for i := len(a.procs) - 1; i >= 0; i-- {
		errs = append(errs, a.procs[i].Stop())
	}
	a.procs = nil
	return errors.Join(errs...)
}

// waitForSocket waits until containerd accepts connections on its socket.
func waitForSocket(ctx context.Context, p *proc.Process, socket string) error {
	deadline := time.Now().Add(containerdReadyTimeout)
	for {
		conn, err := net.DialTimeout("unix", socket, time.Second)
		if err == nil {
			return conn.Close()
		}
		if done, perr := p.Exited(); done {
			return fmt.Errorf("agent: %w", perr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent: containerd not answering on %s after %s: %w (log: %s)", socket, containerdReadyTimeout, err, p.LogPath())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: waiting for containerd: %w", context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeFile writes a generated file atomically, readable by its owner only.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("agent: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("agent: writing %s: %w", path, err)
	}
	return nil
}
