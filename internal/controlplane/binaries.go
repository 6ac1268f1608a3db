package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/k3snet/k3snet/internal/buildcache"
)

// BinDirEnv names the environment variable that points at the built control-plane binaries.
const BinDirEnv = "K3SNET_BIN_DIR"

// requiredFiles lists the executables (and kwok's stage file) a control plane needs, by base name.
var requiredFiles = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kine", "kwok", "kwok-stages.yaml"}

// ErrBinariesMissing is returned by FindBinDir when the control-plane binaries are not built.
var ErrBinariesMissing = errors.New("control-plane binaries not built (run `make tools`, which runs hack/build-tools.sh)")

// FindBinDir returns the directory holding the control-plane binaries: $K3SNET_BIN_DIR when set,
// else the cache directory hack/build-tools.sh writes for the tools module found above the
// working directory. Both must hold every required file.
func FindBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return dir, checkBinDir(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding control-plane binaries: %w", err)
	}
	tools, err := findToolsModule(wd)
	if err != nil {
		return "", err
	}
	key, err := toolsKey(tools)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(buildcache.Dir(), "bin", key)
	return dir, checkBinDir(dir)
}

func checkBinDir(dir string) error {
	var missing []string
	for _, f := range requiredFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s lacks %v", ErrBinariesMissing, dir, missing)
	}
	return nil
}

// findToolsModule walks up from dir to the checkout's internal/tools module.
func findToolsModule(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("finding the tools module: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		tools := filepath.Join(d, "internal", "tools")
		if _, err := os.Stat(filepath.Join(tools, "go.sum")); err == nil {
			return tools, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: no internal/tools module above %s; set %s", ErrBinariesMissing, dir, BinDirEnv)
		}
	}
}

// toolsKey must match hack/build-tools.sh: the first 16 hex digits of sha256(go.mod + go.sum).
func toolsKey(tools string) (string, error) {
	key, err := buildcache.Key(filepath.Join(tools, "go.mod"), filepath.Join(tools, "go.sum"))
	if err != nil {
		return "", fmt.Errorf("reading tools module: %w", err)
	}
	return key, nil
}
