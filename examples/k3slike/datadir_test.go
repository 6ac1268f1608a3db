package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		uid  int
		home string
		want string
	}{
		{0, "/root", "/var/lib/rancher/k3s"},
		{1000, "/home/ann", "/home/ann/.rancher/k3s"},
		{1000, "", "/var/lib/rancher/k3s"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, defaultDataDir(tt.uid, tt.home), "uid %d home %q", tt.uid, tt.home)
	}
}

func TestParseFlagsDataDirOfANonRootUser(t *testing.T) {
	s := sys(env(nil), host("h"))
	s.uid, s.home = 1000, "/home/ann"
	cfg, err := parseFlags(nil, s, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "/home/ann/.rancher/k3s", cfg.dataDir)
	cfg, err = parseAgentFlags([]string{"--server=https://s:6443", "--token=t"}, s, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "/home/ann/.rancher/k3s", cfg.dataDir)
}

func TestCheckDataDir(t *testing.T) {
	tests := []struct {
		name    string
		state   dataDirState
		wantErr string
	}{
		{name: "a new data dir", state: dataDirState{dir: "/var/lib/rancher/k3s"}},
		{name: "k3slike's data dir of an earlier version: no marker, no K3s token", state: dataDirState{dir: "/d"}},
		{name: "k3slike's marked data dir", state: dataDirState{dir: "/d", ownMarker: true}},
		{name: "k3slike's data dir that has a token file", state: dataDirState{dir: "/d", ownMarker: true, k3sToken: true}},
		{name: "K3s's data dir", state: dataDirState{dir: "/var/lib/rancher/k3s", k3sToken: true}, wantErr: "holds a K3s installation"},
		{name: "another dir than a running k3s's", state: dataDirState{dir: "/d", k3sDataDirs: []string{"/var/lib/rancher/k3s"}}},
		{
			name:    "the data dir of a running k3s, even one k3slike marked",
			state:   dataDirState{dir: "/var/lib/rancher/k3s/", ownMarker: true, k3sDataDirs: []string{"/var/lib/rancher/k3s"}},
			wantErr: "in use by a running k3s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDataDir(tt.state)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestK3sProcessDataDir(t *testing.T) {
	const def = "/var/lib/rancher/k3s"
	tests := []struct {
		argv   []string
		want   string
		wantOK bool
	}{
		{[]string{"/usr/local/bin/k3s", "server"}, def, true},
		{[]string{"/usr/local/bin/k3s", "agent", "--data-dir", "/srv/k3s"}, "/srv/k3s", true},
		{[]string{"k3s", "server", "--data-dir=/srv/k3s/", "--disable=traefik"}, "/srv/k3s", true},
		{[]string{"k3s", "server", "-d", "/opt/k3s"}, "/opt/k3s", true},
		{[]string{"k3s", "kubectl", "get", "nodes"}, "", false},
		{[]string{"/usr/bin/k3slike", "server"}, "", false},
		{[]string{"k3s"}, "", false},
	}
	for _, tt := range tests {
		got, ok := k3sProcessDataDir(tt.argv, def)
		assert.Equal(t, tt.wantOK, ok, "%q", tt.argv)
		assert.Equal(t, tt.want, got, "%q", tt.argv)
	}
}

func TestClaimDataDir(t *testing.T) {
	k3s := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(k3s, "server"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(k3s, "server", "token"), []byte("K10x::server:y\n"), 0o600))
	require.ErrorContains(t, claimDataDir(k3s, "/var/lib/rancher/k3s"), "holds a K3s installation")
	assert.NoFileExists(t, filepath.Join(k3s, dataDirMarker), "a refused data dir is left alone")

	own := filepath.Join(t.TempDir(), "new")
	require.NoError(t, claimDataDir(own, "/var/lib/rancher/k3s"))
	assert.FileExists(t, filepath.Join(own, dataDirMarker))
	require.NoError(t, os.MkdirAll(filepath.Join(own, "server"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(own, "server", "token"), nil, 0o600))
	require.NoError(t, claimDataDir(own, "/var/lib/rancher/k3s"), "k3slike's marked data dir stays its own")
}
