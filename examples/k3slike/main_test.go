package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain keeps the servers the tests start away from the machine's K3s files: every k3slike
// process a test starts inherits K3S_KUBECONFIG_OUTPUT, so it does not write
// /etc/rancher/k3s/k3s.yaml (K3s's --write-kubeconfig default for root), and K3S_CONFIG_FILE,
// an empty file, so /etc/rancher/k3s/config.yaml does not change what a test starts.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "k3slike-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv("K3S_KUBECONFIG_OUTPUT") == "" {
		os.Setenv("K3S_KUBECONFIG_OUTPUT", filepath.Join(dir, "k3s.yaml"))
	}
	if os.Getenv("K3S_CONFIG_FILE") == "" {
		empty := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv("K3S_CONFIG_FILE", empty)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
