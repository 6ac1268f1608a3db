package main

import (
	"fmt"
	"io"
	"net/netip"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func host(name string) func() (string, error) { return func() (string, error) { return name, nil } }

// sys is a root user's machine with getenv, hostname and no config file.
func sys(getenv func(string) string, hostname func() (string, error)) system {
	return system{getenv: getenv, hostname: hostname, uid: 0, home: "/root", files: fstest.MapFS{}}
}

func TestParseFlagsDefaultsAreK3s(t *testing.T) {
	cfg, err := parseFlags(nil, sys(env(nil), host("server-1")), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/rancher/k3s", cfg.dataDir)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}, cfg.clusterCIDRs)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}, cfg.serviceCIDRs)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.43.0.10")}, cfg.clusterDNS)
	assert.Equal(t, "cluster.local", cfg.clusterDomain)
	assert.Equal(t, "kube-system", cfg.serviceLBNamespace)
	assert.Equal(t, "server-1", cfg.nodeName)
	assert.Equal(t, 6443, cfg.httpsListenPort)
	assert.Empty(t, cfg.disable)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, cfg *config)
		wantErr string
	}{
		{
			name: "disable is repeatable, takes comma lists, trims and drops duplicates",
			args: []string{"--disable=coredns, traefik", "--disable", "servicelb,coredns", "--disable=my-addon"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, []string{"coredns", "traefik", "servicelb", "my-addon"}, cfg.disable)
				assert.True(t, cfg.disabled("servicelb"))
				assert.False(t, cfg.disabled("metrics-server"))
			},
		},
		{
			name: "dual-stack cluster and service CIDRs in either order",
			args: []string{"--cluster-cidr=10.42.0.0/16,fd00:42::/56", "--service-cidr=fd00:43::/112,10.43.0.0/16"},
			check: func(t *testing.T, cfg *config) {
				assert.Len(t, cfg.clusterCIDRs, 2)
				assert.Equal(t, "fd00:43::/112", cfg.serviceCIDRs[0].String())
				assert.Equal(t, "fd00:43::a", cfg.clusterDNS[0].String(), "cluster DNS defaults into the first service CIDR")
			},
		},
		{
			name: "node IPs accept comma lists and repeated flags of both families",
			args: []string{"--node-ip=10.0.0.5,fd00::5", "--node-ip", "10.0.0.6", "--node-external-ip=203.0.113.7"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, "[10.0.0.5 fd00::5 10.0.0.6]", fmt.Sprint(cfg.nodeIPs))
				assert.Equal(t, "[203.0.113.7]", fmt.Sprint(cfg.nodeExternalIPs))
			},
		},
		{
			name:  "node name comes from K3S_NODE_NAME when the flag is absent, lower-cased",
			env:   map[string]string{"K3S_NODE_NAME": "Worker-2"},
			check: func(t *testing.T, cfg *config) { assert.Equal(t, "worker-2", cfg.nodeName) },
		},
		{
			name:  "the flag wins over K3S_NODE_NAME",
			args:  []string{"--node-name=from-flag"},
			env:   map[string]string{"K3S_NODE_NAME": "from-env"},
			check: func(t *testing.T, cfg *config) { assert.Equal(t, "from-flag", cfg.nodeName) },
		},
		{name: "a bad cluster CIDR names the flag", args: []string{"--cluster-cidr=10.42.0.0/33"}, wantErr: "invalid --cluster-cidr"},
		{name: "a CIDR with host bits is refused", args: []string{"--service-cidr=10.43.0.1/16"}, wantErr: "did you mean 10.43.0.0/16"},
		{name: "two CIDRs of one family are refused", args: []string{"--cluster-cidr=10.42.0.0/16,10.44.0.0/16"}, wantErr: "at most one CIDR per IP family"},
		{name: "a bad node IP names the flag", args: []string{"--node-ip=10.0.0.300"}, wantErr: "invalid --node-ip"},
		{name: "a bad external IP names the flag", args: []string{"--node-external-ip=example.com"}, wantErr: "invalid --node-external-ip"},
		{name: "a bad cluster DNS names the flag", args: []string{"--cluster-dns=x"}, wantErr: "invalid --cluster-dns"},
		{name: "a bad cluster domain names the flag", args: []string{"--cluster-domain=Not_A_Domain"}, wantErr: "invalid --cluster-domain"},
		{name: "a bad servicelb namespace names the flag", args: []string{"--servicelb-namespace=Kube_System"}, wantErr: "invalid --servicelb-namespace"},
		{name: "a port out of range names the flag", args: []string{"--https-listen-port=70000"}, wantErr: "invalid --https-listen-port"},
		{name: "an unknown flag is an error", args: []string{"--no-such-flag"}, wantErr: "flag provided but not defined"},
		{name: "a stray argument is an error", args: []string{"server"}, wantErr: `unexpected argument "server"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args, sys(env(tt.env), host("host-a")), io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestParseAgentFlags(t *testing.T) {
	const token = "K10abc::abcdef.0123456789abcdef"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, cfg *config)
		wantErr []string
	}{
		{
			name: "K3S_URL and K3S_TOKEN stand in for --server and --token, as for k3s agent",
			env:  map[string]string{"K3S_URL": "https://10.0.0.1:6443", "K3S_TOKEN": token, "K3S_NODE_NAME": "Worker-1"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, "https://10.0.0.1:6443", cfg.serverURL)
				assert.Equal(t, token, cfg.token)
				assert.Equal(t, "worker-1", cfg.nodeName)
				assert.Equal(t, "/var/lib/rancher/k3s", cfg.dataDir)
			},
		},
		{
			name: "flags win over the environment; labels, taints and component args are kept in order",
			args: []string{"--server=https://10.0.0.2:6443", "--token=" + token, "--node-label=pool=a", "--node-label", "tier=web",
				"--node-taint=dedicated=lb:NoSchedule", "--kubelet-arg=max-pods=50", "--kube-proxy-arg=v=2", "--node-ip=10.0.0.7"},
			env: map[string]string{"K3S_URL": "https://10.0.0.1:6443"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, "https://10.0.0.2:6443", cfg.serverURL)
				assert.Equal(t, []string{"pool=a", "tier=web"}, cfg.nodeLabels)
				assert.Equal(t, []string{"dedicated=lb:NoSchedule"}, cfg.nodeTaints)
				assert.Equal(t, []string{"max-pods=50"}, cfg.kubeletArgs)
				assert.Equal(t, []string{"v=2"}, cfg.kubeProxyArgs)
				assert.Equal(t, "[10.0.0.7]", fmt.Sprint(cfg.nodeIPs))
			},
		},
		{name: "server and token are required", wantErr: []string{"invalid --server: required", "invalid --token: required"}},
		{name: "the server must be an https URL", args: []string{"--server=10.0.0.1:6443", "--token=" + token}, wantErr: []string{"invalid --server"}},
		{name: "a taint needs an effect", args: []string{"--server=https://s:6443", "--token=t", "--node-taint=a=b"}, wantErr: []string{"invalid --node-taint"}},
		{name: "a taint's effect is one of three", args: []string{"--server=https://s:6443", "--token=t", "--node-taint=a=b:Sometimes"}, wantErr: []string{"effect must be"}},
		{name: "a label needs a value", args: []string{"--server=https://s:6443", "--token=t", "--node-label=justakey"}, wantErr: []string{"invalid --node-label"}},
		{name: "component args come without dashes", args: []string{"--server=https://s:6443", "--token=t", "--kubelet-arg=--max-pods=5"}, wantErr: []string{"invalid --kubelet-arg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseAgentFlags(tt.args, sys(env(tt.env), host("host-a")), io.Discard)
			if len(tt.wantErr) > 0 {
				for _, want := range tt.wantErr {
					require.ErrorContains(t, err, want)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestParseFlagsNodeFlagsAndAgentSwitch(t *testing.T) {
	cfg, err := parseFlags([]string{"--disable-agent", "--node-label=a=b", "--kubelet-arg=max-pods=9"}, sys(env(nil), host("h")), io.Discard)
	require.NoError(t, err)
	assert.True(t, cfg.disableAgent)
	assert.Equal(t, []string{"a=b"}, cfg.nodeLabels)
	assert.Equal(t, []string{"max-pods=9"}, cfg.kubeletArgs)
	cfg, err = parseFlags([]string{"--kubeconfig=/k"}, sys(env(nil), host("h")), io.Discard)
	require.NoError(t, err)
	assert.True(t, cfg.disableAgent, "someone else's cluster has its own kubelets")
}
