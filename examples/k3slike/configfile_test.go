package main

import (
	"io"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMergeConfig(t *testing.T) {
	tests := []struct {
		name    string
		docs    []configDoc
		want    map[string]configValue
		wantErr []string
	}{
		{
			name: "scalars, lists and booleans become flag values",
			docs: []configDoc{{"/c.yaml", []byte("write-kubeconfig-mode: \"0644\"\nhttps-listen-port: 6444\ndisable-agent: true\nnode-label:\n  - a=b\n  - c=d\n")}},
			want: map[string]configValue{
				"write-kubeconfig-mode": {items: []string{"0644"}, files: []string{"/c.yaml"}},
				"https-listen-port":     {items: []string{"6444"}, files: []string{"/c.yaml"}},
				"disable-agent":         {items: []string{"true"}, files: []string{"/c.yaml"}},
				"node-label":            {items: []string{"a=b", "c=d"}, files: []string{"/c.yaml", "/c.yaml"}, list: true},
			},
		},
		{
			// K3s's docs' example of multiple config files.
			name: "a later file replaces a key, key+ appends to it",
			docs: []configDoc{
				{"/c.yaml", []byte("token: boop\nnode-label:\n  - foo=bar\n  - bar=baz\n")},
				{"/c.yaml.d/test1.yaml", []byte("write-kubeconfig-mode: 600\nnode-taint:\n  - alice=bob:NoExecute\n")},
				{"/c.yaml.d/test2.yaml", []byte("write-kubeconfig-mode: 777\nnode-label:\n  - other=what\n  - foo=three\nnode-taint+:\n  - charlie=delta:NoSchedule\n")},
			},
			want: map[string]configValue{
				"token":                 {items: []string{"boop"}, files: []string{"/c.yaml"}},
				"write-kubeconfig-mode": {items: []string{"777"}, files: []string{"/c.yaml.d/test2.yaml"}},
				"node-label":            {items: []string{"other=what", "foo=three"}, files: []string{"/c.yaml.d/test2.yaml", "/c.yaml.d/test2.yaml"}, list: true},
				"node-taint": {items: []string{"alice=bob:NoExecute", "charlie=delta:NoSchedule"},
					files: []string{"/c.yaml.d/test1.yaml", "/c.yaml.d/test2.yaml"}, list: true},
			},
		},
		{
			name: "key and key+ in one file append",
			docs: []configDoc{{"/c.yaml", []byte("tls-san+: b\ntls-san: a\n")}},
			want: map[string]configValue{"tls-san": {items: []string{"a", "b"}, files: []string{"/c.yaml", "/c.yaml"}, list: true}},
		},
		{
			name: "key+ without an earlier value is the value",
			docs: []configDoc{{"/c.yaml", []byte("disable+: traefik\n")}},
			want: map[string]configValue{"disable": {items: []string{"traefik"}, files: []string{"/c.yaml"}, list: true}},
		},
		{
			name:    "a map value names the file and key",
			docs:    []configDoc{{"/c.yaml", []byte("node-label:\n  a: b\n")}},
			wantErr: []string{"config file /c.yaml", `key "node-label"`, "want a string, number, boolean"},
		},
		{
			name:    "a list of maps names the file and key",
			docs:    []configDoc{{"/d.yaml", []byte("disable:\n  - {a: b}\n")}},
			wantErr: []string{"config file /d.yaml", `key "disable"`},
		},
		{
			name:    "YAML that is not a mapping names the file",
			docs:    []configDoc{{"/e.yaml", []byte("- a\n- b\n")}},
			wantErr: []string{"config file /e.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mergeConfig(tt.docs)
			if len(tt.wantErr) > 0 {
				for _, want := range tt.wantErr {
					require.ErrorContains(t, err, want)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestConfigFiles(t *testing.T) {
	files := fstest.MapFS{
		"etc/rancher/k3s/config.yaml":                {Data: []byte("a: 1\n")},
		"etc/rancher/k3s/config.yaml.d/20-b.yaml":    {Data: []byte("b: 2\n")},
		"etc/rancher/k3s/config.yaml.d/10-a.yml":     {Data: []byte("c: 3\n")},
		"etc/rancher/k3s/config.yaml.d/05-notes.txt": {Data: []byte("not: read\n")},
		"srv/only.yaml.d/1.yaml":                     {Data: []byte("d: 4\n")},
	}
	paths := func(docs []configDoc) (out []string) {
		for _, d := range docs {
			out = append(out, d.path)
		}
		return out
	}

	docs, err := configFiles(files, defaultConfigFile, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"/etc/rancher/k3s/config.yaml", "/etc/rancher/k3s/config.yaml.d/10-a.yml", "/etc/rancher/k3s/config.yaml.d/20-b.yaml"}, paths(docs),
		"the file, then its .d drop-ins in lexical order; other extensions skipped")

	docs, err = configFiles(fstest.MapFS{}, defaultConfigFile, false)
	require.NoError(t, err, "a missing default config file is fine")
	assert.Empty(t, docs)

	_, err = configFiles(fstest.MapFS{}, "/srv/missing.yaml", true)
	require.ErrorContains(t, err, "config file /srv/missing.yaml", "a missing explicit config file is an error")

	docs, err = configFiles(files, "/srv/only.yaml", true)
	require.NoError(t, err, "drop-ins without the file are enough, as in K3s")
	assert.Equal(t, []string{"/srv/only.yaml.d/1.yaml"}, paths(docs))
}

// k3sNetworkingConfig is a K3s server config file as K3s's networking docs write them: a
// dual-stack cluster without flannel, with K3s's network policy controller off.
const k3sNetworkingConfig = `cluster-cidr:
  - 10.42.0.0/16
  - 2001:cafe:42::/56
service-cidr: 10.43.0.0/16,2001:cafe:43::/112
flannel-backend: none
disable-network-policy: true
disable:
  - traefik
  - servicelb
node-label:
  - "foo=bar"
  - "something=amazing"
write-kubeconfig-mode: "0644"
tls-san:
  - "foo.local"
cluster-init: true
`

func TestParseFlagsK3sNetworkingConfigFile(t *testing.T) {
	s := sys(env(nil), host("h"))
	s.files = fstest.MapFS{"etc/rancher/k3s/config.yaml": {Data: []byte(k3sNetworkingConfig)}}
	cfg, err := parseFlags(nil, s, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "[10.42.0.0/16 2001:cafe:42::/56]", fmtList(cfg.clusterCIDRs))
	assert.Equal(t, "[10.43.0.0/16 2001:cafe:43::/112]", fmtList(cfg.serviceCIDRs))
	assert.True(t, cfg.disableNetworkPolicy)
	assert.Equal(t, []string{"traefik", "servicelb"}, cfg.disable)
	assert.Equal(t, []string{"foo=bar", "something=amazing"}, cfg.nodeLabels)
	assert.Equal(t, "0644", cfg.writeKubeconfigMode)
	assert.Equal(t, []string{"foo.local"}, cfg.tlsSANs)
	assert.Equal(t, []string{"ignoring K3s settings k3snet does not implement: cluster-init, flannel-backend"}, cfg.warnings)
}
