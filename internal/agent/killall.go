package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/internal/podnet"
	"github.com/k3snet/k3snet/netpol"
)

// killTimeout bounds the wait for killed processes to be gone.
const killTimeout = 15 * time.Second

// Killall removes what the agent of dataDir left on this machine, as k3s-killall.sh does for
// K3s: the node's processes with every container of every pod, the mounts below the agent's
// directories (pod network namespaces included), the kubelet's cgroups, the pod network (cni0,
// routes, and every KUBE-, CNI- and flannel rule, plus NetworkPolicy's ipsets) of the network
// namespace it runs in, and host-local's address records. Images and the data dir stay.
// It reports every step that failed and does the others anyway.
func Killall(ctx context.Context, dataDir string) error {
	l := NewLayout(dataDir)
	var errs []error
	errs = append(errs, killNodeProcesses(l))
	errs = append(errs, unmountBelow([]string{l.Run, l.Agent, l.Kubelet}))
	if root, err := kubeletCgroupRoot(filepath.Join(l.Agent, "etc", "kubelet.yaml")); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, removeKubeletCgroups(root))
	}
	errs = append(errs, removePodNetwork(ctx))
	errs = append(errs, os.RemoveAll(l.Run), os.RemoveAll(l.CNIIPAM))
	return errors.Join(errs...)
}

// nodeProcessMarkers are command-line fragments that only this agent's processes carry: its
// containerd's config and socket (which every shim names), its kubelet's root dir and its
// kube-proxy's config.
func nodeProcessMarkers(l Layout) []string {
	return []string{l.ContainerdConfig, l.ContainerdSocket, "--root-dir=" + l.Kubelet, filepath.Join(l.Agent, "etc", "kube-proxy.yaml")}
}

// process is one entry of /proc.
type process struct {
	pid, ppid int
	cmdline   string
}

// listProcesses reads every process's parent and command line.
func listProcesses() ([]process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		// stat is "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := strings.Fields(string(rest))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		out = append(out, process{pid: pid, ppid: ppid, cmdline: string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))})
	}
	return out, nil
}

// treesMatching returns the processes whose command line contains a marker, with all their
// descendants (a shim's containers).
func treesMatching(procs []process, markers []string) []int {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []int
	var add func(pid int)
	add = func(pid int) {
		if slices.Contains(out, pid) {
			return
		}
		out = append(out, pid)
		for _, c := range children[pid] {
			add(c)
		}
	}
	for _, p := range procs {
		if p.pid != os.Getpid() && slices.ContainsFunc(markers, func(m string) bool { return strings.Contains(p.cmdline, m) }) {
			add(p.pid)
		}
	}
	slices.Sort(out)
	return out
}

// killNodeProcesses kills the agent's processes and their descendants and waits until they
// are gone.
func killNodeProcesses(l Layout) error {
	procs, err := listProcesses()
	if err != nil {
		return fmt.Errorf("killall: listing processes: %w", err)
	}
	pids := treesMatching(procs, nodeProcessMarkers(l))
	var sockets []string
	for _, p := range procs {
		if slices.Contains(pids, p.pid) {
			sockets = append(sockets, ShimSockets(p.cmdline)...)
		}
	}
	defer func() {
		for _, s := range sockets {
			_ = os.Remove(s)
		}
	}()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(killTimeout)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if isZombie(pid) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("killall: process %d is still running %s after SIGKILL", pid, killTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// shimSocketDir is where containerd's shims listen, whatever containerd's own state dir.
const shimSocketDir = "/run/containerd/s"

// ShimSockets returns the sockets a containerd-shim-runc-v2 with this command line listens on
// (its API and debug sockets), named as containerd names them (sha256 of
// address/namespace/id[/debug]), or nothing for other processes. A killed shim leaves them.
func ShimSockets(cmdline string) []string {
	fields := strings.Fields(cmdline)
	if len(fields) == 0 || filepath.Base(fields[0]) != "containerd-shim-runc-v2" {
		return nil
	}
	var address, namespace, id string
	for i := 1; i+1 < len(fields); i++ {
		switch fields[i] {
		case "-address", "--address":
			address = fields[i+1]
		case "-namespace", "--namespace":
			namespace = fields[i+1]
		case "-id", "--id":
			id = fields[i+1]
		}
	}
	if address == "" || namespace == "" || id == "" {
		return nil
	}
	var out []string
	for _, p := range []string{filepath.Join(address, namespace, id), filepath.Join(address, namespace, id, "debug")} {
		sum := sha256.Sum256([]byte(p))
		out = append(out, filepath.Join(shimSocketDir, hex.EncodeToString(sum[:])))
	}
	return out
}

// isZombie reports whether pid has exited and only waits for its parent to reap it.
func isZombie(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	fields := strings.Fields(string(rest))
	return len(fields) > 0 && fields[0] == "Z"
}

// mountPoints lists the mount points in mountinfo that lie below one of dirs, deepest first.
func mountPoints(mountinfo string, dirs []string) []string {
	var out []string
	for line := range strings.Lines(mountinfo) {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		for _, d := range dirs {
			if d != "" && (mp == d || strings.HasPrefix(mp, strings.TrimSuffix(d, "/")+"/")) {
				out = append(out, mp)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return slices.Compact(out)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountBelow unmounts every mount below dirs, deepest first; a mount still busy is detached.
func unmountBelow(dirs []string) error {
	var errs []error
	// A mount can hide others; repeat until nothing below dirs is left or nothing changes.
	for range 5 {
		info, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return fmt.Errorf("killall: reading mountinfo: %w", err)
		}
		mounts := mountPoints(string(info), dirs)
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mounts {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("killall: unmounting %s: %w", mp, err))
			}
		}
	}
	return errors.Join(errs...)
}

// kubeletCgroupRoot reads cgroupRoot from the kubelet configuration the agent wrote; no file
// means the agent never started a kubelet, and no setting is the root cgroup.
func kubeletCgroupRoot(configFile string) (string, error) {
	data, err := os.ReadFile(configFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("killall: %w", err)
	}
	var kc kubeletv1beta1.KubeletConfiguration
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return "", fmt.Errorf("killall: reading %s: %w", configFile, err)
	}
	return kc.CgroupRoot, nil
}

// removeKubeletCgroups removes the kubelet's pod cgroups below root, and root itself when it
// is a node's own (not the machine's root cgroup).
func removeKubeletCgroups(root string) error {
	if root == "" || root == "/" {
		var errs []error
		for _, name := range []string{"kubepods", "kubepods.slice"} {
			errs = append(errs, RemoveCgroupRoot("/"+name))
		}
		return errors.Join(errs...)
	}
	return RemoveCgroupRoot(root)
}

// removePodNetwork removes the pod network of the current network namespace: the bridge,
// podnet's routes and rules, NetworkPolicy's chains and ipsets, and every rule kube-proxy and
// the CNI plugins wrote, the way k3s-killall.sh filters iptables-save.
func removePodNetwork(ctx context.Context) error {
	var errs []error
	if out, err := exec.CommandContext(ctx, "ip", "link", "delete", podnet.BridgeName).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("killall: deleting %s: %w: %s", podnet.BridgeName, err, strings.TrimSpace(string(out))))
	}
	errs = append(errs, podnet.RemoveRoutes(ctx), podnet.RemoveRules(), netpol.Cleanup(ctx))
	for _, family := range []string{"iptables", "ip6tables"} {
		errs = append(errs, filterRules(ctx, family))
	}
	return errors.Join(errs...)
}

// filterRules rewrites one family's tables without the node's rules.
func filterRules(ctx context.Context, family string) error {
	save, err := exec.CommandContext(ctx, family+"-save").Output()
	if err != nil {
		return fmt.Errorf("killall: %s-save: %w", family, err)
	}
	kept := withoutNodeRules(string(save))
	if kept == string(save) {
		return nil
	}
	restore := exec.CommandContext(ctx, family+"-restore")
	restore.Stdin = strings.NewReader(kept)
	if out, err := restore.CombinedOutput(); err != nil {
		return fmt.Errorf("killall: %s-restore: %w: %s", family, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// withoutNodeRules drops every line of iptables-save output that mentions KUBE-, CNI- or
// flannel (chains and rules of kube-proxy, NetworkPolicy, portmap and the pod network), as
// k3s-killall.sh does.
func withoutNodeRules(save string) string {
	var b strings.Builder
	for line := range strings.Lines(save) {
		if strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(strings.ToLower(line), "flannel") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
