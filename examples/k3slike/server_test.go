package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKubeconfigClientIsNotPacedByClientGoDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	cfg, err := loadKubeconfig(path)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443", cfg.Host)
	assert.Equal(t, float32(kubeconfigQPS), cfg.QPS)
	assert.Equal(t, kubeconfigBurst, cfg.Burst)

	_, err = loadKubeconfig(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "loading --kubeconfig")
}
