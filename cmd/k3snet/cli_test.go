package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCommandLineErrorsAreOneLineNamingTheFlag runs the binary as a user would: a bad flag, a
// missing downward-API value or an unknown command exits 1 with one line that says what to
// fix; --version prints the version.
func TestCommandLineErrorsAreOneLineNamingTheFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{name: "a bad CIDR", args: []string{"controllers", "--cluster-cidr=10.42.0.0/99"}, want: "invalid --cluster-cidr"},
		{name: "a node without NODE_NAME", args: []string{"node", "--node-ip=10.0.0.5"}, want: "invalid --node-name: required (or NODE_NAME)"},
		{name: "a bad NODE_IP", args: []string{"node"}, env: []string{"NODE_NAME=n", "NODE_IP=10.0.0.300"}, want: "invalid --node-ip"},
		{name: "a bad namespace to uninstall", args: []string{"uninstall", "--namespace=K3snet"}, want: "invalid --namespace"},
		{name: "an unknown command", args: []string{"server"}, want: `unknown command "server"`},
		{name: "no command", want: "usage: k3snet controllers|node|uninstall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary(t), tt.args...)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, tt.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, 1, exit.ExitCode())
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(string(out)), "\n")+1, "one line: %q", out)
			assert.Contains(t, string(out), tt.want)
		})
	}
	out, err := exec.Command(binary(t), "--version").Output()
	require.NoError(t, err)
	assert.Regexp(t, `^k3snet v\S+\n$`, string(out))
}
