package helmchart

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// KubernetesAPIVar is the placeholder K3s's helm job replaces with the API server's address,
// so that a chart can be served by the K3s server itself.
const KubernetesAPIVar = "%{KUBERNETES_API}%"

// StaticURLPrefix is how a HelmChart names a file of the K3s server's static directory
// (<data-dir>/server/static), which K3s serves at https://<apiserver>/static/. K3s's own
// packaged manifests name their charts so.
const StaticURLPrefix = "https://" + KubernetesAPIVar + "/static/"

// StaticPath returns the path under the static directory that chart names, and false when
// chart is not https://%{KUBERNETES_API}%/static/<path>. The path is not checked; ReadStatic
// refuses one that leaves the directory.
func StaticPath(chart string) (string, bool) {
	return strings.CutPrefix(strings.TrimSpace(chart), StaticURLPrefix)
}

// ReadStatic reads the chart archive at path under the static directory dir, never from
// outside it (os.Root stops symbolic links that leave it too), and refuses one larger than
// maxBytes rather than reading it into memory.
func ReadStatic(dir, path string, maxBytes int64) ([]byte, error) {
	if !filepath.IsLocal(path) {
		return nil, fmt.Errorf("chart %s%s: %q is not a path inside the static directory", StaticURLPrefix, path, path)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the static directory: %w", err)
	}
	defer root.Close()
	f, err := root.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading chart %s%s from the static directory: %w", StaticURLPrefix, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading chart %s%s from the static directory: %w", StaticURLPrefix, path, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("chart %s%s is larger than %d bytes", StaticURLPrefix, path, maxBytes)
	}
	return data, nil
}
