package images

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/agent"
	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/packaged/helmjob"
	"github.com/k3snet/k3snet/servicelb"
)

// criNamespace is the containerd namespace the CRI (and so the kubelet) uses.
const criNamespace = "k8s.io"

// pinnedLabel is the image label containerd's CRI reports as pinned, which the kubelet's
// image garbage collection skips.
const pinnedLabel = "io.cri-containerd.pinned=pinned"

// nodeBinaries returns the paths of names in the node bin directory. A missing one skips the
// test, naming it, or fails it under CI, where hack/build-node.sh has run.
func nodeBinaries(t *testing.T, names ...string) map[string]string {
	t.Helper()
	root, err := agent.FindNodeBinDir()
	dir := filepath.Join(root, "bin")
	var missing []string
	out := map[string]string{}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if _, serr := os.Stat(p); err != nil || serr != nil {
			missing = append(missing, name)
		}
		out[name] = p
	}
	if len(missing) == 0 {
		return out
	}
	msg := fmt.Sprintf("needs %s from hack/build-node.sh in %s (or set %s)", strings.Join(missing, ", "), dir, agent.NodeBinDirEnv)
	if err != nil {
		msg += ": " + err.Error()
	}
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil
}

// testContainerd is a throwaway containerd with its own root, state and socket.
type testContainerd struct {
	ctr    string
	socket string
}

// startContainerd runs containerd from bins in dir until the test ends. The CRI and NRI
// plugins are off: the test talks to containerd through ctr, and NRI's socket is global.
func startContainerd(t *testing.T, bins map[string]string, dir string) *testContainerd {
	t.Helper()
	socket := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins.'io.containerd.internal.v1.opt']
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), socket, socket+".ttrpc", filepath.Join(dir, "opt"))
	configPath := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(configPath, []byte(config), 0o600))

	logPath := filepath.Join(dir, "containerd.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bins["containerd"], "--config", configPath)
	// The shim and runc are looked up on PATH.
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bins["containerd"])+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()

	c := &testContainerd{ctr: bins["ctr"], socket: socket}
	t.Cleanup(func() {
		c.removeTasks(t)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		unmountUnder(t, dir)
		if t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				t.Logf("containerd log:\n%s", lastLines(string(log), 40))
			}
		}
	})

	// Ready means ctr gets an answer; a containerd that exits is a failure at once.
	for range 600 {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("containerd exited: %v\n%s", err, lastLines(string(log), 40))
		default:
		}
		if _, err := c.run(t, nil, "version"); err == nil {
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("containerd did not answer on its socket within a minute")
	return nil
}

// run runs ctr against the test containerd in the CRI namespace and returns its stdout.
func (c *testContainerd) run(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.ctr, append([]string{"--address", c.socket, "--namespace", criNamespace}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ctr %s: %w: %s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// removeTasks kills and deletes the containers a failed test may have left running.
func (c *testContainerd) removeTasks(t *testing.T) {
	out, err := c.run(t, nil, "containers", "ls", "-q")
	if err != nil {
		return
	}
	for id := range strings.FieldsSeq(out) {
		_, _ = c.run(t, nil, "tasks", "kill", "-s", "SIGKILL", id)
		_, _ = c.run(t, nil, "tasks", "delete", "-f", id)
		_, _ = c.run(t, nil, "containers", "delete", id)
	}
}

// importImages writes imgs as one tarball into dir, imports it with extra import flags, and
// returns the names containerd lists.
func (c *testContainerd) importImages(t *testing.T, dir string, imgs []Image, flags ...string) []string {
	t.Helper()
	tarball := filepath.Join(dir, "images.tar")
	f, err := os.Create(tarball)
	require.NoError(t, err)
	require.NoError(t, WriteArchive(f, imgs))
	require.NoError(t, f.Close())
	_, err = c.run(t, nil, slices.Concat([]string{"images", "import", "--snapshotter", "overlayfs"}, flags, []string{tarball})...)
	require.NoError(t, err)
	out, err := c.run(t, nil, "images", "ls", "-q")
	require.NoError(t, err)
	return strings.Fields(out)
}

// runContainer runs image as container id with the ctr run flags and the command args
// (none: the image's own), removes it when it exits, and returns its output.
func (c *testContainerd) runContainer(t *testing.T, image, id string, flags, args []string) (string, error) {
	t.Helper()
	return c.run(t, nil, slices.Concat([]string{"run", "--rm", "--snapshotter", "overlayfs", "--cgroup", "/k3snet-images-test/" + id},
		flags, []string{image, id}, args)...)
}

// unmountUnder detaches every mount below dir (snapshots of containers that were not
// removed), so that the test's temporary directory can go.
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
			t.Logf("unmounting %s: %v", mounts[i], err)
		}
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestContainerdImportsAndRunsTheImages imports a tarball of the test server and LB images
// into a real containerd with `ctr images import`, as the agent does with the air-gap
// tarball, checks that both are listed under their full names, and runs them: the test
// server through its own entrypoint, fetching from this test over loopback, the LB
// image's iptables, and its forwarder in a network namespace of the test's.
func TestContainerdImportsAndRunsTheImages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	needIptables(t)
	bins := nodeBinaries(t, "containerd", "ctr")
	dir := t.TempDir()

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the test")
	}), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	// The test server image as AirgapImages builds it, told to fetch from this test
	// instead of serving: its command line is then the image's entrypoint plus Cmd.
	ts := testServerImage(buildStatic(t, "./testserver"))
	ts.Cmd = []string{"get", "http://" + ln.Addr().String() + "/"}
	lb, err := lbImage(buildStatic(t, "../../servicelb/forwarder/cmd/klipper-lb"), debianHost())
	require.NoError(t, err)
	c := startContainerd(t, bins, dir)
	// The pinned label keeps the kubelet's image garbage collection off the images, which
	// no registry could bring back.
	names := c.importImages(t, dir, []Image{ts, lb}, "--label", pinnedLabel)
	lbName, err := NormalizeName(servicelb.DefaultImage)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{TestServerImage, lbName}, names, "only the full names, no import-<date> prefix")
	out, err := c.run(t, nil, "images", "ls")
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(out, pinnedLabel), "both images carry the label:\n%s", out)
	// The CRI runs containers from unpacked snapshots: the import has made one per layer.
	out, err = c.run(t, nil, "snapshots", "--snapshotter", "overlayfs", "ls")
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(out, "Committed"), "one committed snapshot per image:\n%s", out)

	// Running needs runc and the shim, which containerd finds on PATH next to itself.
	nodeBinaries(t, "runc", "containerd-shim-runc-v2")
	// iptables-restore reads the rules from a file mounted into the container: ctr does not
	// close a container's stdin at the end of its own.
	rules := filepath.Join(dir, "rules")
	require.NoError(t, os.WriteFile(rules, []byte("*nat\n:KUBE-TEST - [0:0]\n"+
		"-A KUBE-TEST -p tcp -m tcp --dport 80 -m comment --comment svc -j DNAT --to-destination 10.0.0.1:80\nCOMMIT\n"), 0o644))
	mountRules := "--mount=type=bind,src=" + rules + ",dst=/rules,options=rbind:ro"
	tests := []struct {
		name  string
		flags []string
		image string
		args  []string
		want  string
	}{
		{name: "the test server image runs its entrypoint", flags: []string{"--net-host"}, image: TestServerImage, want: "hello from the test"},
		{name: "the LB image's plain iptables has the host's backend", image: lbName, args: []string{"iptables", "--version"}, want: hostIptablesMode(t)},
		{name: "the LB image's legacy iptables runs", image: lbName, args: []string{"ip6tables-legacy-save", "--version"}, want: "(legacy)"},
		{name: "the LB image's iptables-restore loads extensions", flags: []string{"--privileged", mountRules}, image: lbName, args: []string{"iptables-restore", "--test", "/rules"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("k3snet-images-test-%d", i)
			out, err := c.runContainer(t, tt.image, id, tt.flags, tt.args)
			require.NoError(t, err)
			assert.Contains(t, out, tt.want)
		})
	}
	t.Run("the LB image's forwarder installs its rules and removes them on SIGTERM", func(t *testing.T) {
		ns := netns.NewT(t, "imgs")
		require.NoError(t, ns.EnableForwarding())
		const id = "k3snet-images-test-lb"
		env := []string{"SRC_PORT=80", "SRC_RANGES=0.0.0.0/0", "DEST_PROTO=TCP", "DEST_PORT=8080", "DEST_IPS=10.0.0.5"}
		args := []string{"--address", c.socket, "--namespace", criNamespace, "run", "--rm", "--snapshotter", "overlayfs",
			"--privileged", "--with-ns", "network:" + ns.Path(), "--cgroup", "/k3snet-images-test/" + id}
		for _, e := range env {
			args = append(args, "--env", e)
		}
		cmd := exec.Command(c.ctr, append(args, lbName, id)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })

		// The rules appear once the forwarder has started, signal handler included.
		const dnat = "--to-destination 10.0.0.5:8080"
		installed := false
		for range 600 {
			select {
			case err := <-exited:
				t.Fatalf("the forwarder exited early: %v\n%s", err, out.String())
			default:
			}
			rules, err := ns.Exec(t.Context(), "iptables-nft-save", "-t", "nat")
			require.NoError(t, err)
			if installed = strings.Contains(rules, dnat); installed {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		require.True(t, installed, "the forwarder's DNAT rule within a minute:\n%s", out.String())

		_, err := c.run(t, nil, "tasks", "kill", "--signal", "SIGTERM", id)
		require.NoError(t, err)
		require.NoError(t, <-exited, "the forwarder exits 0 on SIGTERM:\n%s", out.String())
		rules, err := ns.Exec(t.Context(), "iptables-nft-save")
		require.NoError(t, err)
		assert.NotContains(t, rules, "KLIPPER-LB", "the forwarder removed its rules")
	})
	t.Cleanup(func() { removeTestCgroups(t) })
}

// removeTestCgroups removes the parent cgroup of the tests' containers: runc removes each
// container's own, the parent is the tests'.
func removeTestCgroups(t *testing.T) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/k3snet-images-test")
	unified, _ := filepath.Glob("/sys/fs/cgroup/k3snet-images-test")
	for _, d := range append(dirs, unified...) {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Logf("removing cgroup %s: %v", d, err)
		}
	}
}

// TestContainerdRunsTheInstallImages imports the install tarball (hack/build-images.sh's
// k3snet-images-<arch>.tar) into a real containerd, checks both names, and runs the
// controllers image as deploy/'s node DaemonSet does: with only NET_ADMIN and NET_RAW, in a
// network namespace (the node's, there), with a host file as /run/xtables.lock, its
// NetworkPolicy tools make a set and a rule that matches it.
func TestContainerdRunsTheInstallImages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	needIptables(t)
	needIpset(t)
	bins := nodeBinaries(t, "containerd", "ctr", "runc", "containerd-shim-runc-v2")
	dir := t.TempDir()
	imgs, err := InstallImages(ControllersImage, InstallPrograms{
		K3snet:      buildStatic(t, "../../cmd/k3snet"),
		K3snetNode:  buildStatic(t, "../../cmd/k3snet", "k3snet_node"),
		KlipperLB:   buildStatic(t, "../../servicelb/forwarder/cmd/klipper-lb"),
		KlipperHelm: buildStatic(t, "../../packaged/helm/cmd/klipper-helm"),
	})
	require.NoError(t, err)
	c := startContainerd(t, bins, dir)
	lbName, err := NormalizeName(servicelb.DefaultImage)
	require.NoError(t, err)
	jobName, err := NormalizeName(helmjob.DefaultJobImage)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{ControllersImage, lbName, jobName}, c.importImages(t, dir, imgs))

	ns := netns.NewT(t, "imgs")
	lock := filepath.Join(dir, "xtables.lock")
	require.NoError(t, os.WriteFile(lock, nil, 0o600))
	rules := filepath.Join(dir, "rules")
	require.NoError(t, os.WriteFile(rules, []byte("*filter\n:K3SNET-TEST - [0:0]\n"+
		"-A K3SNET-TEST -m set --match-set K3SNET-TEST-SET src -j ACCEPT\nCOMMIT\n"), 0o644))
	// The DaemonSet drops ALL and adds NET_ADMIN and NET_RAW; ctr takes no ALL, so this
	// drops each capability of containerd's default set but NET_RAW. --seccomp is the
	// runtime's default profile, the DaemonSet's RuntimeDefault.
	node := []string{"--seccomp"}
	for _, cap := range []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "SETGID", "SETUID",
		"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"} {
		node = append(node, "--cap-drop", "CAP_"+cap)
	}
	node = append(node, "--cap-add", "CAP_NET_ADMIN", "--with-ns", "network:"+ns.Path(),
		"--mount=type=bind,src="+lock+",dst=/run/xtables.lock,options=rbind:rw",
		"--mount=type=bind,src="+rules+",dst=/rules,options=rbind:ro")
	// Without NET_ADMIN: the capabilities above are what decides.
	unprivileged := slices.DeleteFunc(slices.Clone(node), func(s string) bool { return s == "--cap-add" || s == "CAP_NET_ADMIN" })
	tests := []struct {
		name    string
		flags   []string
		args    []string
		want    string
		wantErr string
	}{
		{name: "k3snet runs", args: []string{"/k3snet", "--version"}, want: "k3snet"},
		{name: "the node build runs", args: []string{NodeProgram, "--version"}, want: "k3snet"},
		{name: "the node build is the one without the controllers", args: []string{NodeProgram, "controllers"}, wantErr: "this k3snet is the node build"},
		{name: "ipset is refused without NET_ADMIN", flags: unprivileged, args: []string{"ipset", "create", "K3SNET-TEST-SET", "hash:ip"}, wantErr: "Operation not permitted"},
		{name: "ipset creates a set with the node's capabilities", flags: node, args: []string{"ipset", "create", "K3SNET-TEST-SET", "hash:ip"}},
		{name: "iptables-restore matches it, taking the xtables lock", flags: node, args: []string{"iptables-restore", "--noflush", "-w", "5", "/rules"}},
		{name: "iptables-legacy reads its table with the lock", flags: node, args: []string{"iptables-legacy", "-w", "5", "-S", "INPUT"}, want: "-P INPUT ACCEPT"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("k3snet-install-test-%d", i)
			out, err := c.runContainer(t, ControllersImage, id, tt.flags, tt.args)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Contains(t, out, tt.want)
		})
	}
	saved, err := ns.Exec(t.Context(), "iptables-save", "-t", "filter")
	require.NoError(t, err)
	assert.Contains(t, saved, "--match-set K3SNET-TEST-SET src", "the rule is in the namespace, as on the node")
	t.Cleanup(func() { removeTestCgroups(t) })
}

// TestContainerdRunsTheHelmJobImage imports the helm job image into a real containerd and runs
// it as its image config says, non-root: klipper-helm starts, reads its environment, and
// refuses Helm v2 with K3s's exit status 64.
func TestContainerdRunsTheHelmJobImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	bins := nodeBinaries(t, "containerd", "ctr", "runc", "containerd-shim-runc-v2")
	dir := t.TempDir()
	img := helmJobImage(buildStatic(t, "../../packaged/helm/cmd/klipper-helm"), debianHost())
	c := startContainerd(t, bins, dir)
	name, err := NormalizeName(helmjob.DefaultJobImage)
	require.NoError(t, err)
	assert.Equal(t, []string{name}, c.importImages(t, dir, []Image{img}))
	t.Cleanup(func() { removeTestCgroups(t) })

	env := []string{"--env", "NAME=traefik", "--env", "CHART_NAMESPACE=kube-system", "--env", "HELM_VERSION=v2"}
	_, err = c.runContainer(t, name, "k3snet-images-test-helm", env, []string{"/klipper-helm", "install"}) // ctr replaces the whole command line
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exit status 64")
	assert.Contains(t, err.Error(), "klipper-helm: helm v2 is no longer supported")
}
