package images

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/packaged/helmjob"
	"github.com/k3snet/k3snet/servicelb"
)

// needIpset skips (or under CI fails) a test on a machine without Debian's ipset.
func needIpset(t *testing.T) {
	t.Helper()
	needHostFile(t, debianHost().ipset, "Debian's ipset")
}

// fakeInstallPrograms writes small files standing for both builds of k3snet and the forwarder.
func fakeInstallPrograms(t *testing.T) InstallPrograms {
	t.Helper()
	p := fakePrograms(t)
	dir := t.TempDir()
	write := func(name string) string {
		f := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(f, []byte("#!"+name+"\n"), 0o755))
		return f
	}
	return InstallPrograms{K3snet: write("k3snet"), K3snetNode: write("k3snet-node"), KlipperLB: p.KlipperLB, KlipperHelm: p.KlipperHelm}
}

// filesByPath returns img's files by path.
func filesByPath(img Image) map[string]File {
	out := make(map[string]File, len(img.Files))
	for _, f := range img.Files {
		out[f.Path] = f
	}
	return out
}

func TestInstallImages(t *testing.T) {
	needIptables(t)
	needIpset(t)
	progs := fakeInstallPrograms(t)
	lbName, err := NormalizeName(servicelb.DefaultImage)
	require.NoError(t, err)
	jobName, err := NormalizeName(helmjob.DefaultJobImage)
	require.NoError(t, err)

	tests := []struct {
		name      string
		image     string
		progs     func(InstallPrograms) InstallPrograms
		wantNames []string
		wantErr   string
	}{
		{name: "the default name is k3snet.local's", image: ControllersImage, wantNames: []string{"k3snet.local/k3snet:v0.1.0", lbName, jobName}},
		{name: "another name is normalized", image: "example/k3snet:v2", wantNames: []string{"docker.io/example/k3snet:v2", lbName, jobName}},
		{name: "an invalid name is refused", image: "Example/k3snet:v2", wantErr: "the controllers image: invalid image name"},
		{name: "a missing program is named", image: ControllersImage, progs: func(p InstallPrograms) InstallPrograms { p.K3snet = ""; return p }, wantErr: "program K3snet is not set"},
		{name: "the node build is required", image: ControllersImage, progs: func(p InstallPrograms) InstallPrograms { p.K3snetNode = ""; return p }, wantErr: "program K3snetNode is not set"},
		{name: "an absent node build is named", image: ControllersImage, progs: func(p InstallPrograms) InstallPrograms { p.K3snetNode = filepath.Join(t.TempDir(), "gone"); return p }, wantErr: "program K3snetNode"},
		{name: "the helm job is required", image: ControllersImage, progs: func(p InstallPrograms) InstallPrograms { p.KlipperHelm = ""; return p }, wantErr: "program KlipperHelm is not set"},
		{name: "a directory is not a program", image: ControllersImage, progs: func(p InstallPrograms) InstallPrograms { p.KlipperLB = t.TempDir(); return p }, wantErr: "program KlipperLB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := progs
			if tt.progs != nil {
				p = tt.progs(p)
			}
			imgs, err := InstallImages(tt.image, p)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantNames, pathsOfImages(imgs))
		})
	}
}

func TestControllersImageContent(t *testing.T) {
	needIptables(t)
	needIpset(t)
	progs := fakeInstallPrograms(t)
	imgs, err := InstallImages(ControllersImage, progs)
	require.NoError(t, err)
	img := imgs[0]
	assert.Equal(t, []string{"/k3snet"}, img.Entrypoint)
	assert.Empty(t, img.Cmd, "the Deployment and the DaemonSet give the subcommand")
	assert.Equal(t, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, img.Env)
	files := filesByPath(img)
	assert.Equal(t, File{Path: "/k3snet", Mode: 0o755, Source: progs.K3snet}, files["/k3snet"])
	assert.Equal(t, File{Path: NodeProgram, Mode: 0o755, Source: progs.K3snetNode}, files[NodeProgram], "the node DaemonSet's command")
	triple := multiarchTriple()
	for _, p := range []string{
		"/usr/sbin/ipset", "/lib/" + triple + "/libipset.so.13", "/lib/" + triple + "/libmnl.so.0",
		"/usr/sbin/iptables", "/usr/sbin/ip6tables-legacy-restore", "/usr/sbin/" + xtablesNFT, "/usr/sbin/" + xtablesLegacy,
		"/usr/lib/" + triple + "/xtables/libxt_set.so", "/lib64/ld-linux-x86-64.so.2", "/run", "/tmp",
	} {
		assert.Contains(t, files, p)
	}
	if _, err := os.Stat(debianHost().caFile); err == nil {
		assert.Contains(t, files, "/etc/ssl/certs/ca-certificates.crt", "the Helm controller downloads charts over TLS")
	}
	paths := make([]string, 0, len(img.Files))
	for _, f := range img.Files {
		paths = append(paths, f.Path)
	}
	assert.IsIncreasing(t, paths, "sorted, each path once")

	// Both builds land in the layer as executables with their own content.
	layer := map[string]archiveFile{}
	for _, f := range readTar(t, layerOf(t, writeArchiveBytes(t, imgs), img.Name)) {
		layer[f.hdr.Name] = f
	}
	for name, want := range map[string]string{"k3snet": "#!k3snet\n", "k3snet-node": "#!k3snet-node\n"} {
		if f, ok := layer[name]; assert.True(t, ok, "%s is in the layer", name) {
			assert.Equal(t, int64(0o755), f.hdr.Mode&0o777, name)
			assert.Equal(t, want, string(f.data), name)
		}
	}

	lb, err := lbImage(progs.KlipperLB, debianHost())
	require.NoError(t, err)
	assert.Equal(t, lb.Files, imgs[1].Files, "the LB image is the air-gap one")
	assert.NotContains(t, filesByPath(lb), "/usr/sbin/ipset", "only the controllers image carries ipset")
}

// TestControllersImageFirewallRuns unpacks the controllers image's layer and runs its ipset
// and iptables inside it (chroot, in a network namespace of the test's), as the node mode's
// NetworkPolicy controller does: a set, then a rule that matches it, with both backends.
func TestControllersImageFirewallRuns(t *testing.T) {
	needIptables(t)
	needIpset(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to chroot into the unpacked image and make a network namespace")
	}
	imgs, err := InstallImages(ControllersImage, fakeInstallPrograms(t))
	require.NoError(t, err)
	img := imgs[0]
	root := t.TempDir()
	extractLayer(t, layerOf(t, writeArchiveBytes(t, []Image{img}), img.Name), root)
	// Sets belong to a network namespace: every step runs in this one.
	ns := netns.NewT(t, "imgs")

	rules := "*filter\n:K3SNET-TEST - [0:0]\n" +
		"-A K3SNET-TEST -m set --match-set K3SNET-TEST-SET src -j ACCEPT\nCOMMIT\n"
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantOutput string
	}{
		{name: "ipset creates a set", args: []string{"ipset", "create", "K3SNET-TEST-SET", "hash:ip", "family", "inet"}},
		{name: "ipset restores members", args: []string{"ipset", "restore"}, stdin: "add K3SNET-TEST-SET 10.42.0.5\n"},
		{name: "ipset lists them", args: []string{"ipset", "save"}, wantOutput: "add K3SNET-TEST-SET 10.42.0.5"},
		{name: "iptables-nft matches the set", args: []string{"iptables-nft-restore", "--noflush"}, stdin: rules},
		{name: "iptables-legacy matches the set", args: []string{"iptables-legacy-restore", "--noflush"}, stdin: rules},
		{name: "the nft rule reads back", args: []string{"iptables-nft-save", "-t", "filter"}, wantOutput: "--match-set K3SNET-TEST-SET src"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := ns.Do(func() error {
				// The child inherits the namespace of this locked thread.
				cmd := exec.Command(path.Join("/usr/sbin", tt.args[0]), tt.args[1:]...)
				cmd.Env = img.Env
				cmd.Dir = "/"
				cmd.Stdin = strings.NewReader(tt.stdin)
				cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
				cmd.Stdout, cmd.Stderr = &out, &out
				return cmd.Run()
			})
			require.NoError(t, err, "%s", out.String())
			assert.Contains(t, out.String(), tt.wantOutput)
		})
	}
}
