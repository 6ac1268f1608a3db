package ccmstub

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveNodeName(t *testing.T) {
	host := func(name string) func() (string, error) { return func() (string, error) { return name, nil } }
	failing := func() (string, error) { return "", errors.New("uts namespace gone") }
	tests := []struct {
		name        string
		flag        string
		env         string
		hostname    func() (string, error)
		want        string
		wantErr     string
		wantInvalid bool // the error wraps ErrInvalidNodeName
	}{
		{name: "the hostname is used and lower-cased", hostname: host("MyHost.example.com"), want: "myhost.example.com"},
		{name: "surrounding blanks are trimmed", hostname: host(" host-a\n"), want: "host-a"},
		{name: "K3S_NODE_NAME wins over the hostname and is lower-cased", env: "Worker-2", hostname: host("host-a"), want: "worker-2"},
		{name: "the flag wins over K3S_NODE_NAME", flag: "from-flag", env: "from-env", hostname: host("host-a"), want: "from-flag"},
		{name: "the flag is used without asking the hostname", flag: "node-1", hostname: failing, want: "node-1"},
		{name: "a host named localhost must be given a name", hostname: host("localhost"), wantErr: `the hostname "localhost" cannot name a node; pass --node-name or set K3S_NODE_NAME`, wantInvalid: true},
		{name: "a host named LOCALHOST must be given a name too", hostname: host("LOCALHOST"), wantErr: "pass --node-name or set K3S_NODE_NAME", wantInvalid: true},
		{name: "a host without a name must be given one", hostname: host(""), wantErr: `the hostname "" cannot name a node; pass --node-name or set K3S_NODE_NAME`, wantInvalid: true},
		{name: "a hostname that is no DNS subdomain is refused", hostname: host("my_host"), wantErr: `the hostname "my_host" is not a valid node name`, wantInvalid: true},
		{name: "an invalid K3S_NODE_NAME names its source", env: "bad name", hostname: host("ok"), wantErr: `K3S_NODE_NAME "bad name" is not a valid node name`, wantInvalid: true},
		{name: "an invalid flag names its source", flag: "-bad-", hostname: host("ok"), wantErr: `--node-name "-bad-" is not a valid node name`, wantInvalid: true},
		{name: "a flag of localhost is refused like the hostname", flag: "localhost", hostname: host("ok"), wantErr: `--node-name "localhost" cannot name a node`, wantInvalid: true},
		{name: "an unreadable hostname is reported with the way out", hostname: failing, wantErr: "reading the hostname: uts namespace gone; pass --node-name or set K3S_NODE_NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == NodeNameEnv {
					return tt.env
				}
				return ""
			}
			got, err := ResolveNodeName(tt.flag, getenv, tt.hostname)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Equal(t, tt.wantInvalid, errors.Is(err, ErrInvalidNodeName))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestResolveNodeNameDefaultsToTheProcessEnvironment(t *testing.T) {
	t.Setenv(NodeNameEnv, "From-Env")
	got, err := ResolveNodeName("", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "from-env", got)
}
