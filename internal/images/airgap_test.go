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

	"github.com/k3snet/k3snet/packaged"
	"github.com/k3snet/k3snet/packaged/helm"
	"github.com/k3snet/k3snet/packaged/helmjob"
	"github.com/k3snet/k3snet/servicelb"
)

// needIptables skips (or under CI fails) a test on a machine without Debian's iptables.
func needIptables(t *testing.T) {
	t.Helper()
	needHostFile(t, "/usr/sbin/"+xtablesNFT, "Debian's iptables")
	needHostFile(t, "/usr/sbin/"+xtablesLegacy, "Debian's iptables")
}

// hostIptablesMode is what `iptables --version` prints last on this machine: plain
// iptables follows Debian's alternatives, in the image as on the host.
func hostIptablesMode(t *testing.T) string {
	t.Helper()
	target, err := filepath.EvalSymlinks("/usr/sbin/iptables")
	require.NoError(t, err)
	if filepath.Base(target) == xtablesLegacy {
		return "(legacy)"
	}
	return "(nf_tables)"
}

func TestAirgapImagesAreTheImagesTheCodeRuns(t *testing.T) {
	needIptables(t)
	imgs, err := AirgapImages(fakePrograms(t), helm.RenderInline)
	require.NoError(t, err)

	want := []string{PauseImage, servicelb.DefaultImage, TestServerImage, helmjob.DefaultJobImage}
	pkg, err := packaged.Images(helm.RenderInline)
	require.NoError(t, err)
	for _, img := range pkg {
		want = append(want, img.Ref)
	}
	for i := range want {
		want[i], err = NormalizeName(want[i])
		require.NoError(t, err)
	}
	var got []string
	for _, img := range imgs {
		got = append(got, img.Name)
	}
	assert.ElementsMatch(t, want, got, "every packaged manifest image, the LB image, the sandbox image, the test server and the helm job")
	assert.Contains(t, got, "docker.io/rancher/mirrored-pause:3.6", "the sandbox image K3s's containerd config names")
}

func TestAirgapImagesContent(t *testing.T) {
	needIptables(t)
	progs := fakePrograms(t)
	imgs, err := AirgapImages(progs, helm.RenderInline)
	require.NoError(t, err)
	byName := map[string]Image{}
	for _, img := range imgs {
		byName[img.Name] = img
	}
	lbName, err := NormalizeName(servicelb.DefaultImage)
	require.NoError(t, err)
	helmJobName, err := NormalizeName(helmjob.DefaultJobImage)
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", byName[helmJobName].User, "the job's pod runs as non-root, and the kubelet needs a numeric user to check it")

	tests := []struct {
		name       string
		image      string
		entrypoint string
		source     string
		wantFiles  []string
	}{
		{name: "the sandbox image runs pause", image: "docker.io/rancher/mirrored-pause:3.6", entrypoint: "/pause", source: progs.Pause},
		{name: "CoreDNS has accounts", image: "docker.io/rancher/mirrored-coredns-coredns:1.12.3", entrypoint: "/coredns", source: progs.CoreDNS, wantFiles: []string{"/etc/passwd", "/etc/group"}},
		{name: "Traefik has accounts and a /tmp", image: "docker.io/rancher/mirrored-library-traefik:3.6.12", entrypoint: "/traefik", source: progs.Traefik, wantFiles: []string{"/etc/passwd", "/etc/group", "/tmp"}},
		{name: "the LB image has iptables", image: lbName, entrypoint: "/klipper-lb", source: progs.KlipperLB, wantFiles: []string{
			"/usr/sbin/iptables", "/usr/sbin/ip6tables-legacy-restore", "/usr/sbin/" + xtablesNFT, "/usr/sbin/" + xtablesLegacy,
			"/lib64/ld-linux-x86-64.so.2", "/lib/" + multiarchTriple() + "/libc.so.6",
			"/usr/lib/" + multiarchTriple() + "/xtables/libxt_comment.so", "/run",
		}},
		{name: "the test server image runs the test server", image: TestServerImage, entrypoint: "/testserver", source: progs.TestServer},
		{name: "the helm job image runs klipper-helm with a home", image: helmJobName, entrypoint: "/klipper-helm", source: progs.KlipperHelm,
			wantFiles: []string{"/etc/passwd", "/home/klipper-helm", "/tmp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, ok := byName[tt.image]
			require.True(t, ok, "image %s in %v", tt.image, pathsOfImages(imgs))
			require.Equal(t, []string{tt.entrypoint}, img.Entrypoint)
			files := map[string]File{}
			for _, f := range img.Files {
				files[f.Path] = f
			}
			assert.Equal(t, File{Path: tt.entrypoint, Mode: 0o755, Source: tt.source}, files[tt.entrypoint])
			for _, p := range tt.wantFiles {
				assert.Contains(t, files, p)
			}
		})
	}

	lb := byName[lbName]
	assert.Equal(t, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, lb.Env)
	files := map[string]File{}
	for _, f := range lb.Files {
		files[f.Path] = f
	}
	for _, name := range iptablesCommands() {
		f, ok := files["/usr/sbin/"+name]
		if assert.True(t, ok, name) {
			assert.Contains(t, []string{xtablesNFT, xtablesLegacy}, f.Link, "%s runs a multi-call binary", name)
			assert.Equal(t, strings.Contains(name, "-legacy"), f.Link == xtablesLegacy, "%s runs the backend its name says", name)
		}
	}
}

func TestProgramsValidate(t *testing.T) {
	progs := fakePrograms(t)
	tests := []struct {
		name    string
		tweak   func(*Programs)
		wantErr string
	}{
		{name: "five regular files are valid", tweak: func(*Programs) {}},
		{name: "an unset program is named", tweak: func(p *Programs) { p.Traefik = "" }, wantErr: "program Traefik is not set"},
		{name: "a missing program is named", tweak: func(p *Programs) { p.Pause += ".missing" }, wantErr: "program Pause"},
		{name: "a directory is not a program", tweak: func(p *Programs) { p.CoreDNS = t.TempDir() }, wantErr: "program CoreDNS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := progs
			tt.tweak(&p)
			err := p.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// TestLBImageIptablesRuns unpacks the LB image's layer and runs its iptables inside it
// (chroot, fresh network namespace): the shared libraries, the loader's search without
// ld.so.cache, and the dlopen'ed extensions all have to be in the image.
func TestLBImageIptablesRuns(t *testing.T) {
	needIptables(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to chroot into the unpacked image and make a network namespace")
	}
	lb, err := lbImage(fakePrograms(t).KlipperLB, debianHost())
	require.NoError(t, err)
	archive := writeArchiveBytes(t, []Image{lb})
	root := t.TempDir()
	name, err := NormalizeName(lb.Name)
	require.NoError(t, err)
	extractLayer(t, layerOf(t, archive, name), root)

	rules := "*filter\n:K3SNET-TEST - [0:0]\n" +
		"-A K3SNET-TEST -p tcp -m tcp --dport 80 -m comment --comment \"svc\" -j ACCEPT\n" +
		"-A K3SNET-TEST -s 10.0.0.0/8 -p udp -m multiport --dports 53,54 -j DROP\nCOMMIT\n" +
		"*nat\n:K3SNET-TEST - [0:0]\n-A K3SNET-TEST -p tcp -j DNAT --to-destination 10.0.0.1:80\nCOMMIT\n"
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantOutput string
	}{
		{name: "plain iptables has the host's backend", args: []string{"iptables", "--version"}, wantOutput: hostIptablesMode(t)},
		{name: "ip6tables-legacy runs the legacy binary", args: []string{"ip6tables-legacy", "--version"}, wantOutput: "(legacy)"},
		{name: "iptables-nft-restore loads the extensions of a ruleset", args: []string{"iptables-nft-restore", "--test"}, stdin: rules},
		{name: "iptables-nft-save lists an empty ruleset", args: []string{"iptables-nft-save"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(path.Join("/usr/sbin", tt.args[0]), tt.args[1:]...)
			cmd.Env = lb.Env
			cmd.Dir = "/"
			cmd.Stdin = strings.NewReader(tt.stdin)
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Cloneflags: syscall.CLONE_NEWNET}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(t, cmd.Run(), "%s", out.String())
			assert.Contains(t, out.String(), tt.wantOutput)
		})
	}
	_, err = os.Stat(filepath.Join(root, "etc", "ld.so.cache"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the loader finds the libraries without a cache")
}

// pathsOfImages returns the names of imgs.
func pathsOfImages(imgs []Image) []string {
	out := make([]string, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, img.Name)
	}
	return out
}
