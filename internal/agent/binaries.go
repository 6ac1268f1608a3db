package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/k3snet/k3snet/internal/buildcache"
)

// NodeBinDirEnv names the environment variable that points at hack/build-node.sh's output.
const NodeBinDirEnv = "K3SNET_NODE_BIN_DIR"

// ErrNodeBinariesMissing is returned by FindNodeBinDir when the node's binaries are not built.
var ErrNodeBinariesMissing = errors.New("node binaries not built (run `make tools`, which runs hack/build-node.sh)")

// FindNodeBinDir returns the directory holding containerd, runc and the CNI plugins:
// $K3SNET_NODE_BIN_DIR when set, else the cache directory hack/build-node.sh writes for the
// checkout found above the working directory (keyed by the script's own contents).
func FindNodeBinDir() (string, error) {
	dir := os.Getenv(NodeBinDirEnv)
	if dir == "" {
		script, err := buildcache.FindInCheckout(filepath.Join("hack", "build-node.sh"))
		if err != nil {
			return "", fmt.Errorf("%w: %v; set %s", ErrNodeBinariesMissing, err, NodeBinDirEnv)
		}
		key, err := buildcache.Key(script)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrNodeBinariesMissing, err)
		}
		dir = filepath.Join(buildcache.Dir(), "node", key)
	}
	var missing []string
	for _, f := range (nodeBinaries{shimDir: filepath.Join(dir, "bin"), cniDir: filepath.Join(dir, "cni"),
		containerd: filepath.Join(dir, "bin", "containerd"), ctr: filepath.Join(dir, "bin", "ctr"), runc: filepath.Join(dir, "bin", "runc")}).required() {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, filepath.Base(f))
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s lacks %v", ErrNodeBinariesMissing, dir, missing)
	}
	return dir, nil
}
