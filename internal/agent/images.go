package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// criNamespace is the containerd namespace the CRI (and so the kubelet) uses.
const criNamespace = "k8s.io"

// pinnedLabel is the containerd image label the CRI reports as pinned; the kubelet's image
// garbage collection never removes a pinned image.
const pinnedLabel = "io.cri-containerd.pinned=pinned"

// imageArchiveSuffixes are the tarballs K3s imports from <data-dir>/agent/images.
var imageArchiveSuffixes = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.lz4"}

// imageArchives lists the image tarballs in dir, sorted; a missing dir has none.
func imageArchives(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsDir() {
			continue
		}
		if slices.ContainsFunc(imageArchiveSuffixes, func(s string) bool { return strings.HasSuffix(e.Name(), s) }) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// importImages imports every image tarball of dir into the CRI's namespace, as K3s does at
// agent start for air-gapped nodes. A bad tarball is logged and skipped, as in K3s; the others
// are still imported.
func importImages(ctx context.Context, ctr, socket, dir string) error {
	logger := klog.FromContext(ctx)
	archives, err := imageArchives(dir)
	if err != nil {
		return err
	}
	for _, archive := range archives {
		start := time.Now()
		// Pinned, as K3s pins the images it imports: no registry can bring them back once
		// the kubelet's image garbage collection removed them.
		out, err := exec.CommandContext(ctx, ctr, "--address", socket, "--namespace", criNamespace,
			"images", "import", "--label", pinnedLabel, archive).CombinedOutput()
		if err != nil {
			logger.Error(err, "Importing an image tarball failed; its images are not available", "file", archive, "output", strings.TrimSpace(string(out)))
			continue
		}
		logger.Info("Imported images", "file", archive, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
