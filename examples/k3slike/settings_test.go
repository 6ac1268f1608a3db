package main

import (
	"fmt"
	"io"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fmtList[T any](items []T) string { return fmt.Sprint(items) }

// TestParseFlagsSources runs the whole pipeline (command line, environment, config files) on
// a machine of config files and variables.
func TestParseFlagsSources(t *testing.T) {
	const configPath = "etc/rancher/k3s/config.yaml"
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		files    map[string]string
		check    func(t *testing.T, cfg *config)
		warnings []string
		wantErr  []string
	}{
		{
			name:  "a config file sets what the command line leaves unset",
			files: map[string]string{configPath: "cluster-domain: example.internal\nhttps-listen-port: 6444\ndisable-agent: true\n"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, "example.internal", cfg.clusterDomain)
				assert.Equal(t, 6444, cfg.httpsListenPort)
				assert.True(t, cfg.disableAgent)
			},
		},
		{
			name:  "the command line wins over the config file",
			args:  []string{"--cluster-domain=flag.internal", "--https-listen-port=7443"},
			files: map[string]string{configPath: "cluster-domain: file.internal\nhttps-listen-port: 6444\n"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, "flag.internal", cfg.clusterDomain)
				assert.Equal(t, 7443, cfg.httpsListenPort)
			},
		},
		{
			name:  "the environment wins over the config file",
			env:   map[string]string{"K3S_DATA_DIR": "/from/env", "K3S_NODE_NAME": "env-node"},
			files: map[string]string{configPath: "data-dir: /from/file\nnode-name: file-node\n"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, "/from/env", cfg.dataDir)
				assert.Equal(t, "env-node", cfg.nodeName)
			},
		},
		{
			name: "the command line wins over the environment",
			args: []string{"-d", "/from/flag", "-o", "/flag/k3s.yaml"},
			env:  map[string]string{"K3S_DATA_DIR": "/from/env", "K3S_KUBECONFIG_OUTPUT": "/env/k3s.yaml", "K3S_KUBECONFIG_MODE": "640"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, "/from/flag", cfg.dataDir)
				assert.Equal(t, "/flag/k3s.yaml", cfg.writeKubeconfig)
				assert.Equal(t, "640", cfg.writeKubeconfigMode, "K3S_KUBECONFIG_MODE is --write-kubeconfig-mode")
			},
		},
		{
			name:  "a list on the command line replaces the config file's list",
			args:  []string{"--node-label=cli=1"},
			files: map[string]string{configPath: "node-label: [file=1, file=2]\ndisable: [traefik]\n"},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, []string{"cli=1"}, cfg.nodeLabels)
				assert.Equal(t, []string{"traefik"}, cfg.disable)
			},
		},
		{
			name: "drop-ins: a later file replaces a list, key+ appends, in lexical order",
			files: map[string]string{
				configPath:                              "node-label: [a=1]\ndisable: [traefik]\ncluster-domain: first.internal\n",
				"etc/rancher/k3s/config.yaml.d/20.yaml": "node-label+: [c=3]\ncluster-domain: last.internal\n",
				"etc/rancher/k3s/config.yaml.d/10.yaml": "node-label+: [b=2]\ndisable: [servicelb]\n",
			},
			check: func(t *testing.T, cfg *config) {
				assert.Equal(t, []string{"a=1", "b=2", "c=3"}, cfg.nodeLabels)
				assert.Equal(t, []string{"servicelb"}, cfg.disable)
				assert.Equal(t, "last.internal", cfg.clusterDomain)
			},
		},
		{
			name:  "K3S_CONFIG_FILE names the config file",
			env:   map[string]string{"K3S_CONFIG_FILE": "/srv/k3s.yaml"},
			files: map[string]string{"srv/k3s.yaml": "cluster-domain: srv.internal\n", configPath: "cluster-domain: etc.internal\n"},
			check: func(t *testing.T, cfg *config) { assert.Equal(t, "srv.internal", cfg.clusterDomain) },
		},
		{
			name:  "-c wins over K3S_CONFIG_FILE",
			args:  []string{"-c", "/srv/flag.yaml"},
			env:   map[string]string{"K3S_CONFIG_FILE": "/srv/k3s.yaml"},
			files: map[string]string{"srv/k3s.yaml": "cluster-domain: env.internal\n", "srv/flag.yaml": "cluster-domain: flag.internal\n"},
			check: func(t *testing.T, cfg *config) { assert.Equal(t, "flag.internal", cfg.clusterDomain) },
		},
		{
			name:  "booleans: false in a file is false, K3S_DEBUG raises the verbosity",
			env:   map[string]string{"K3S_DEBUG": "true"},
			files: map[string]string{configPath: "disable-network-policy: false\n"},
			check: func(t *testing.T, cfg *config) {
				assert.False(t, cfg.disableNetworkPolicy)
				assert.EqualValues(t, 4, cfg.logging.Verbosity)
			},
		},
		{
			name:  "logging flags come from the file too: v and logging-format",
			files: map[string]string{configPath: "v: 3\nlogging-format: json\n"},
			check: func(t *testing.T, cfg *config) {
				assert.EqualValues(t, 3, cfg.logging.Verbosity)
				assert.Equal(t, "json", cfg.logging.Format)
			},
		},
		{
			name:     "K3s settings k3slike lacks are ignored with one warning, environment included",
			env:      map[string]string{"K3S_TOKEN": "secret", "K3S_DATASTORE_ENDPOINT": "mysql://x"},
			files:    map[string]string{configPath: "flannel-backend: none\netcd-expose-metrics: true\nsecrets-encryption: true\n"},
			check:    func(t *testing.T, cfg *config) {},
			warnings: []string{"ignoring K3s settings k3snet does not implement: $K3S_TOKEN, $K3S_DATASTORE_ENDPOINT, etcd-expose-metrics, flannel-backend, secrets-encryption"},
		},
		{
			name:     "keys that are no flag are ignored with a warning naming key and file, as K3s does",
			files:    map[string]string{configPath: "no-such-flag: 1\n"},
			check:    func(t *testing.T, cfg *config) {},
			warnings: []string{"ignoring config file keys that are not flags of this command: no-such-flag (/etc/rancher/k3s/config.yaml)"},
		},
		{
			name:    "a mistyped value names the file and key",
			files:   map[string]string{configPath: "https-listen-port: many\n"},
			wantErr: []string{"config file /etc/rancher/k3s/config.yaml", `key "https-listen-port"`, `invalid value "many"`},
		},
		{
			name:    "a mistyped boolean names the file and key",
			files:   map[string]string{"etc/rancher/k3s/config.yaml.d/90.yaml": "disable-agent: maybe\n"},
			wantErr: []string{"config file /etc/rancher/k3s/config.yaml.d/90.yaml", `key "disable-agent"`},
		},
		{
			name:    "a list for a one-value flag names the file and key",
			files:   map[string]string{configPath: "cluster-domain: [a.internal, b.internal]\n"},
			wantErr: []string{`key "cluster-domain": --cluster-domain takes one value, not a list`},
		},
		{
			name:    "a value the flag's check refuses names the flag",
			files:   map[string]string{configPath: "cluster-cidr: 10.42.0.0/33\n"},
			wantErr: []string{"invalid --cluster-cidr"},
		},
		{
			name:    "a mistyped variable names it",
			env:     map[string]string{"K3S_DEBUG": "sure"},
			wantErr: []string{`$K3S_DEBUG: invalid value "sure" for --debug`},
		},
		{
			name:    "a missing explicit config file is an error",
			args:    []string{"--config=/srv/none.yaml"},
			wantErr: []string{"config file /srv/none.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sys(env(tt.env), host("host-a"))
			files := fstest.MapFS{}
			for name, data := range tt.files {
				files[name] = &fstest.MapFile{Data: []byte(data)}
			}
			s.files = files
			cfg, err := parseFlags(tt.args, s, io.Discard)
			if len(tt.wantErr) > 0 {
				for _, want := range tt.wantErr {
					require.ErrorContains(t, err, want)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
			assert.Equal(t, tt.warnings, cfg.warnings)
		})
	}
}

func TestParseAgentFlagsSources(t *testing.T) {
	s := sys(env(map[string]string{"K3S_URL": "https://10.0.0.1:6443", "K3S_TOKEN_FILE": "/etc/token"}), host("h"))
	s.files = fstest.MapFS{
		"etc/token": {Data: []byte("K10abc::id.secret\n")},
		// One config file serves servers and agents: server-only keys are skipped.
		"etc/rancher/k3s/config.yaml": {Data: []byte("node-label: [pool=a]\ncluster-cidr: 10.42.0.0/16\nflannel-iface: eth1\n")},
	}
	cfg, err := parseAgentFlags(nil, s, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "https://10.0.0.1:6443", cfg.serverURL)
	assert.Equal(t, "K10abc::id.secret", cfg.token, "K3S_TOKEN_FILE is read when there is no token")
	assert.Equal(t, []string{"pool=a"}, cfg.nodeLabels)
	assert.Equal(t, []string{
		"ignoring K3s settings k3snet does not implement: flannel-iface",
		"ignoring config file keys that are not flags of this command: cluster-cidr (/etc/rancher/k3s/config.yaml)",
	}, cfg.warnings)

	cfg, err = parseAgentFlags([]string{"-s", "https://10.0.0.2:6443", "-t", "tok", "--node-internal-dns=worker.internal"}, s, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"worker.internal"}, cfg.nodeInternalDNS, "agents publish their DNS names too")
	assert.Equal(t, "https://10.0.0.2:6443", cfg.serverURL, "K3s's -s and -t")
	assert.Equal(t, "tok", cfg.token)
}

func TestUnimplementedK3sFlagsOnTheCommandLine(t *testing.T) {
	tests := []struct {
		command string
		args    []string
		wantErr string
	}{
		{"server", []string{"--flannel-backend=none"}, "--flannel-backend: k3s flag not implemented by k3slike"},
		{"server", []string{"--disable-agent", "--cluster-init"}, "--cluster-init: k3s flag not implemented by k3slike"},
		{"server", []string{"-t", "secret"}, "--token: k3s flag not implemented by k3slike"},
		{"server", []string{"--datastore-endpoint", "mysql://x"}, "--datastore-endpoint: k3s flag not implemented by k3slike"},
		{"agent", []string{"--server=https://s:6443", "--token=t", "--flannel-iface=eth1"}, "--flannel-iface: k3s flag not implemented by k3slike"},
		{"agent", []string{"--server=https://s:6443", "--token=t", "--disable=traefik"}, "flag provided but not defined: --disable"},
		{"server", []string{"-q"}, "flag provided but not defined: -q"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.command, tt.args), func(t *testing.T) {
			var err error
			if tt.command == "agent" {
				_, err = parseAgentFlags(tt.args, sys(env(nil), host("h")), io.Discard)
			} else {
				_, err = parseFlags(tt.args, sys(env(nil), host("h")), io.Discard)
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestEveryK3sEnvironmentVariableNamesAK3sFlag(t *testing.T) {
	all := map[string]bool{}
	for _, f := range k3sFlags("server") {
		all[f] = true
	}
	for _, e := range k3sEnv {
		assert.True(t, all[e.flag], "$%s names --%s, which K3s does not have", e.env, e.flag)
	}
}
