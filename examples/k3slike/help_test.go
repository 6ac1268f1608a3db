package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runBinary runs the built k3slike with args and returns its stdout, stderr and exit code.
func runBinary(t *testing.T, exe string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "K3S_CONFIG_FILE=") // the machine's config file stays out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

// TestCommandLineOfTheBinary checks what a user sees: help and versions on stdout with exit 0,
// one-line errors on stderr with exit 1.
func TestCommandLineOfTheBinary(t *testing.T) {
	exe := buildK3slike(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"server", "--help"}} {
		stdout, stderr, code := runBinary(t, exe, args...)
		assert.Equal(t, 0, code, "%q", args)
		assert.Empty(t, stderr, "%q", args)
		for _, want := range []string{"Usage:", "\nConfig:\n", "\nLogging:\n", "\nListener:\n", "\nData:\n", "\nNetworking:\n",
			"\nClient kubeconfig:\n", "\nComponents:\n", "\nAgent/Node:\n", "\nExperimental:\n",
			"-c, --config string", `(default "/etc/rancher/k3s/config.yaml")`, "[$K3S_CONFIG_FILE]",
			"-d, --data-dir string", "[$K3S_DATA_DIR]", "--https-listen-port int", "(default 6443)",
			"--debug", "-v, --v Level", "--logging-format string", "--disable-network-policy", "-i, --node-ip strings"} {
			assert.Contains(t, stdout, want, "%q", args)
		}
	}

	stdout, _, code := runBinary(t, exe, "agent", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "k3slike agent --server URL --token TOKEN")
	assert.Contains(t, stdout, "-s, --server string")
	assert.Contains(t, stdout, "[$K3S_URL]")
	assert.NotContains(t, stdout, "--cluster-cidr", "agents take the cluster's settings from the server")

	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout, _, code = runBinary(t, exe, args...)
		assert.Equal(t, 0, code)
		assert.Regexp(t, regexp.MustCompile(`^k3slike version \S+.*\ngo version go1\.\S+\nkubernetes version v1\.\d+\.\d+\n$`), stdout)
		assert.Contains(t, stdout, "go version "+runtime.Version())
		assert.Contains(t, stdout, "kubernetes version "+kubernetesVersion)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "k3slike: flag provided but not defined: --no-such-flag\n"},
		{[]string{"--flannel-backend=none"}, "k3slike: --flannel-backend: k3s flag not implemented by k3slike\n"},
		{[]string{"agent", "--flannel-iface", "eth0"}, "k3slike: --flannel-iface: k3s flag not implemented by k3slike\n"},
		{[]string{"--config=/nonexistent/k3slike-config.yaml"}, "k3slike: config file /nonexistent/k3slike-config.yaml: file does not exist\n"},
	} {
		stdout, stderr, code := runBinary(t, exe, tt.args...)
		assert.Equal(t, 1, code, "%q", tt.args)
		assert.Empty(t, stdout, "%q", tt.args)
		assert.Equal(t, tt.want, stderr, "%q", tt.args)
	}
}

func TestHelpGroupsEveryServerFlag(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags([]string{"--help"}, sys(env(nil), host("h")), &out)
	require.ErrorIs(t, err, pflag.ErrHelp)
	assert.NotContains(t, out.String(), "\nOther:\n", "every flag of k3slike server has a K3s heading")
	for _, name := range []string{"--service-node-port-range", "--tls-san", "--write-kubeconfig", "--kube-controller-manager-arg", "--bind-address"} {
		assert.Contains(t, out.String(), name)
	}
	// Each heading lists its flags in the order of helpGroups, not alphabetically.
	assert.Less(t, strings.Index(out.String(), "--cluster-cidr"), strings.Index(out.String(), "--service-cidr"))
	assert.Less(t, strings.Index(out.String(), "--service-cidr"), strings.Index(out.String(), "--cluster-dns"))
}

func TestKubernetesVersionIsTheBuiltOne(t *testing.T) {
	script, err := os.ReadFile("../../hack/build-tools.sh")
	require.NoError(t, err)
	assert.Contains(t, string(script), "\nkube_version="+kubernetesVersion+"\n", "hack/build-tools.sh stamps the binaries with this version")
	tools, err := os.ReadFile("../../internal/tools/go.mod")
	require.NoError(t, err)
	assert.Regexp(t, `\n\s*k8s.io/kubernetes `+regexp.QuoteMeta(kubernetesVersion)+`\b`, string(tools), "the tools module builds them from this k8s.io/kubernetes")
}

func TestBuildVersion(t *testing.T) {
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "unknown"},
		{"a tagged module", &debug.BuildInfo{Main: debug.Module{Version: "v0.2.0"}}, true, "v0.2.0"},
		{"a checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0406a64e1f2b3c4d5e6f0406a64e1f2b3c4d5e6f"}, {Key: "vcs.modified", Value: "false"}}}, true, "(devel) (0406a64e1f2b)"},
		{"a modified checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0406a64e1f2b3c4d"}, {Key: "vcs.modified", Value: "true"}}}, true, "(devel) (0406a64e1f2b, modified)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, buildVersion(tt.info, tt.ok), tt.name)
	}
}
