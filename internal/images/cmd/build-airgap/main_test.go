package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	for _, p := range []string{"/usr/sbin/xtables-nft-multi", "/usr/sbin/ipset"} {
		if _, err := os.Stat(p); err != nil && os.Getenv("CI") == "" {
			t.Skipf("needs Debian's iptables and ipset (hack/setup.sh installs them): %v", err)
		}
	}
	progDir := t.TempDir()
	prog := map[string]string{}
	for _, name := range []string{"pause", "coredns", "traefik", "klipper-lb", "testserver", "klipper-helm", "k3snet", "k3snet-node"} {
		p := filepath.Join(progDir, name)
		require.NoError(t, os.WriteFile(p, []byte(name), 0o755))
		prog[name] = p
	}
	flags := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, "--"+n, prog[n])
		}
		return out
	}
	airgap := flags("pause", "coredns", "traefik", "klipper-lb", "testserver", "klipper-helm")
	outDir := t.TempDir()
	out := filepath.Join(outDir, "images.tar")
	installOut := filepath.Join(outDir, "install.tar")

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantFiles  []string
		wantStderr string
	}{
		{name: "all programs and --out write the air-gap tarball silently", args: slices.Concat(airgap, []string{"--out", out}), wantCode: exitOK, wantFiles: []string{"images.tar"}},
		{name: "k3snet, the forwarder, the helm job and --install-out write the install tarball", args: append(flags("k3snet", "k3snet-node", "klipper-lb", "klipper-helm"), "--install-out", installOut), wantCode: exitOK, wantFiles: []string{"install.tar"}},
		{name: "both tarballs at once", args: slices.Concat(airgap, flags("k3snet", "k3snet-node"), []string{"--out", out, "--install-out", installOut, "--k3snet-image", "example/k3snet:v2"}), wantCode: exitOK, wantFiles: []string{"images.tar", "install.tar"}},
		{name: "no --out and no --install-out is bad usage", args: airgap, wantCode: exitBadUsage},
		{name: "a missing program is bad usage", args: slices.Concat(airgap[2:], []string{"--out", out}), wantCode: exitBadUsage},
		{name: "--install-out without k3snet is bad usage", args: append(flags("k3snet-node", "klipper-lb"), "--install-out", installOut), wantCode: exitBadUsage, wantStderr: "program K3snet is not set"},
		{name: "--install-out without the node build is bad usage naming its flag", args: append(flags("k3snet", "klipper-lb"), "--install-out", installOut), wantCode: exitBadUsage, wantStderr: "--install-out needs --k3snet-node"},
		{name: "--out alone needs no node build", args: slices.Concat(airgap, flags("k3snet"), []string{"--out", out}), wantCode: exitOK, wantFiles: []string{"images.tar"}},
		{name: "--install-out without the helm job is bad usage", args: append(flags("k3snet", "k3snet-node", "klipper-lb"), "--install-out", installOut), wantCode: exitBadUsage, wantStderr: "program KlipperHelm is not set"},
		{name: "an invalid image name fails", args: append(flags("k3snet", "k3snet-node", "klipper-lb", "klipper-helm"), "--install-out", installOut, "--k3snet-image", "Bad/Name"), wantCode: exitFailed},
		{name: "an unknown flag is bad usage", args: []string{"--registry", "x"}, wantCode: exitBadUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, os.RemoveAll(out))
			require.NoError(t, os.RemoveAll(installOut))
			var stderr bytes.Buffer
			assert.Equal(t, tt.wantCode, run(tt.args, &stderr), "stderr: %s", stderr.String())
			entries, err := os.ReadDir(outDir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
				info, err := e.Info()
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())
			}
			assert.Equal(t, tt.wantFiles, names, "no temporary file is left")
			if tt.wantCode == exitOK {
				assert.Empty(t, stderr.String())
			}
			assert.Contains(t, stderr.String(), tt.wantStderr)
		})
	}
}
