package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/k3snet/k3snet/internal/controlplane"
)

// writeKubeconfigFile writes K3s's --write-kubeconfig file with mode whatever the umask, and
// atomically: a client reading it while the server restarts sees the old or the new file.
func writeKubeconfigFile(path string, mode os.FileMode, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--write-kubeconfig: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--write-kubeconfig: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("--write-kubeconfig %s: %w", path, err)
	}
	return nil
}

// writeAdminKubeconfig is --write-kubeconfig: the admin kubeconfig, reaching the API server
// where this machine's clients do, with --write-kubeconfig-mode.
func writeAdminKubeconfig(cp *controlplane.ControlPlane, cfg *config, bind netip.Addr) error {
	mode, err := parseKubeconfigMode(cfg.writeKubeconfigMode)
	if err != nil {
		return fmt.Errorf("invalid --write-kubeconfig-mode: %w", err)
	}
	data, err := cp.AdminKubeconfigFor(kubeconfigServerURL(bind, cfg.httpsListenPort))
	if err != nil {
		return err
	}
	return writeKubeconfigFile(cfg.writeKubeconfig, mode, data)
}
