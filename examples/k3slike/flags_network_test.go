package main

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/k3sflags"
)

// parseNetworkFlags parses args with networkFlags alone.
func parseNetworkFlags(t *testing.T, cfg *config, args ...string) error {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	var n networkFlags
	n.register(fs)
	require.NoError(t, fs.Parse(args))
	var errs k3sflags.Errors
	n.apply(cfg, &errs)
	return errs.Err()
}

func TestNetworkFlags(t *testing.T) {
	var cfg config
	require.NoError(t, parseNetworkFlags(t, &cfg,
		"--service-node-port-range=20000-20999",
		"--node-internal-dns=node.internal", "--node-internal-dns", "a.internal,b.internal",
		"--node-external-dns=node.example.com",
		"--kube-controller-manager-arg=feature-gates=A=true,B=false", "--kube-controller-manager-arg", "node-cidr-mask-size=26",
		"-o", "/tmp/k.yaml", "--write-kubeconfig-mode=644",
		"--bind-address=0.0.0.0", "--advertise-address=10.0.0.9",
		"--tls-san=k3s.example.com,203.0.113.9", "--tls-san", "*.k3s.example.com",
	))
	assert.Equal(t, "20000-20999", cfg.serviceNodePortRange)
	assert.Equal(t, []string{"node.internal", "a.internal", "b.internal"}, cfg.nodeInternalDNS)
	assert.Equal(t, []string{"node.example.com"}, cfg.nodeExternalDNS)
	assert.Equal(t, []string{"feature-gates=A=true,B=false", "node-cidr-mask-size=26"}, cfg.kubeControllerManagerArgs, "not split on commas")
	assert.Equal(t, "/tmp/k.yaml", cfg.writeKubeconfig)
	assert.Equal(t, "644", cfg.writeKubeconfigMode)
	assert.Equal(t, netip.IPv4Unspecified(), cfg.bindAddress)
	assert.Equal(t, netip.MustParseAddr("10.0.0.9"), cfg.advertiseAddress)
	assert.Equal(t, []string{"k3s.example.com", "203.0.113.9", "*.k3s.example.com"}, cfg.tlsSANs)
}

func TestNetworkFlagDefaults(t *testing.T) {
	var cfg config
	require.NoError(t, parseNetworkFlags(t, &cfg))
	assert.Equal(t, "30000-32767", cfg.serviceNodePortRange)
	assert.False(t, cfg.bindAddress.IsValid(), "unset: the control plane's default")
	assert.False(t, cfg.advertiseAddress.IsValid())
	assert.Empty(t, cfg.writeKubeconfigMode)
	home, _ := os.UserHomeDir()
	assert.Equal(t, defaultKubeconfigOutput(os.Geteuid(), home), cfg.writeKubeconfig)
}

func TestNetworkFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		arg, flag string
	}{
		{"--service-node-port-range=32767-30000", "service-node-port-range"},
		{"--service-node-port-range=abc", "service-node-port-range"},
		{"--node-internal-dns=not_a_name", "node-internal-dns"},
		{"--node-external-dns=-bad", "node-external-dns"},
		{"--kube-controller-manager-arg=allocate-node-cidrs=true", "kube-controller-manager-arg"},
		{"--write-kubeconfig-mode=0988", "write-kubeconfig-mode"},
		{"--bind-address=localhost", "bind-address"},
		{"--advertise-address=0.0.0.0", "advertise-address"},
		{"--tls-san=bad_name", "tls-san"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			err := parseNetworkFlags(t, &config{}, tc.arg)
			var fe *k3sflags.Error
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tc.flag, fe.Flag)
		})
	}
}

func TestNodeMasksAreCheckedAgainstTheClusterCIDRs(t *testing.T) {
	cfg := config{clusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16"), netip.MustParsePrefix("fd00:42::/56")}}
	err := parseNetworkFlags(t, &cfg, "--kube-controller-manager-arg=node-cidr-mask-size=24")
	assert.ErrorContains(t, err, "invalid --kube-controller-manager-arg")
	assert.ErrorContains(t, err, "dual-stack")
}

func TestParseKubeconfigMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{"": 0o600, "600": 0o600, "644": 0o644, "0644": 0o644, "0o640": 0, "777": 0o777, "1777": 0, "rw": 0, "-1": 0} {
		got, err := parseKubeconfigMode(in)
		if want == 0 {
			assert.Error(t, err, in)
			continue
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

func TestDefaultKubeconfigOutput(t *testing.T) {
	assert.Equal(t, "/etc/rancher/k3s/k3s.yaml", defaultKubeconfigOutput(0, "/root"))
	assert.Equal(t, "/home/u/.kube/k3s.yaml", defaultKubeconfigOutput(1000, "/home/u"))
	assert.Equal(t, "/etc/rancher/k3s/k3s.yaml", defaultKubeconfigOutput(1000, ""))
}

func TestSplitSANs(t *testing.T) {
	ips, dns, err := splitSANs([]string{"K3s.Example.com", "203.0.113.9", "fd00::9", "*.apps.example.com", "::ffff:10.0.0.1"})
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("fd00::9"), netip.MustParseAddr("10.0.0.1")}, ips)
	assert.Equal(t, []string{"k3s.example.com", "*.apps.example.com"}, dns)
	_, _, err = splitSANs([]string{"ok.example.com", "no space", "*"})
	assert.ErrorContains(t, err, `"no space", "*"`)
}

func TestWriteKubeconfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "rancher", "k3s", "k3s.yaml")
	require.NoError(t, writeKubeconfigFile(path, 0o644, []byte("first")))
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), info.Mode().Perm(), "the mode asked for, whatever the umask")
	require.NoError(t, writeKubeconfigFile(path, 0o600, []byte("second")))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "second", string(data), "a restart rewrites the file")
	info, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}
