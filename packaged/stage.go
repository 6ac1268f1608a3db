package packaged

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/k3snet/k3snet/packaged/helmchart"

	"k8s.io/klog/v2"
)

// manifestsRoot is the directory of manifestsFS that holds the packaged manifests.
const manifestsRoot = "manifests"

// chartDirs maps each internal template key to the chart directory inlined there.
func chartDirs() map[string]string {
	return map[string]string{
		varTraefikChartContent:    "charts/traefik",
		varTraefikCRDChartContent: "charts/traefik-crd",
	}
}

// Stage writes every packaged manifest that skips does not exclude into dir, with vars
// substituted. It runs at every start: a file whose bytes differ from the
// packaged ones is overwritten (user edits are lost, as in K3s) and every file ends with mode
// 0600. Stage never deletes: a previously staged file that is now skipped stays, and the
// deploy controller's disable path removes it.
//
// skips holds the names given to --disable (or --no-deploy): a manifest is skipped when its
// relative path, that path without its extension, or any parent directory is a key.
func Stage(dir string, vars Vars, skips map[string]bool) error {
	if err := vars.Validate(); err != nil {
		return fmt.Errorf("staging manifests: invalid vars: %w", err)
	}
	files, err := renderManifests(vars, skips)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if err := writeManifest(filepath.Join(dir, filepath.FromSlash(f.name)), f.data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stagedFile is one packaged manifest, rendered.
type stagedFile struct {
	name string // slash-separated path relative to the manifests directory
	data []byte
}

// renderManifests returns the packaged manifests that skips does not exclude, in lexical
// order, with every template key replaced.
func renderManifests(vars Vars, skips map[string]bool) ([]stagedFile, error) {
	repl := vars.replacements()
	var names []string
	err := fs.WalkDir(manifestsFS, manifestsRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, strings.TrimPrefix(p, manifestsRoot+"/"))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing packaged manifests: %w", err)
	}
	var out []stagedFile
	for _, name := range names {
		if stageSkipped(name, skips) {
			continue
		}
		data, err := fs.ReadFile(manifestsFS, manifestsRoot+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("reading packaged manifest %s: %w", name, err)
		}
		// Charts are packed only for the manifests that reference them, so a disabled
		// Traefik costs nothing.
		for key, chartDir := range chartDirs() {
			if !bytes.Contains(data, []byte(key)) {
				continue
			}
			content, err := helmchart.ChartContent(chartsFS, chartDir)
			if err != nil {
				return nil, err
			}
			data = bytes.ReplaceAll(data, []byte(key), []byte(content))
		}
		out = append(out, stagedFile{name: name, data: render(data, repl)})
	}
	return out, nil
}

// stageSkipped reports whether the packaged manifest at the slash-separated relative path
// name is excluded by skips: by its path, its path minus the last extension, or any
// parent directory prefix ("metrics-server" skips "metrics-server/x.yaml").
func stageSkipped(name string, skips map[string]bool) bool {
	if skips[name] || skips[strings.TrimSuffix(name, path.Ext(name))] {
		return true
	}
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if skips[dir] {
			return true
		}
	}
	return false
}

// writeManifest makes the file at p hold exactly data with mode 0600. An identical file is
// left alone so that a restart does not touch mtimes and wake the deploy controller; any
// other content is replaced through a rename, so the deploy controller never reads a
// half-written file.
func writeManifest(p string, data []byte) error {
	if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, data) {
		if err := os.Chmod(p, 0o600); err != nil {
			return fmt.Errorf("staging manifest %s: %w", p, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("staging manifest %s: %w", p, err)
	}
	// The temporary name starts with a dot: the deploy controller ignores dotfiles.
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("staging manifest %s: %w", p, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o600)); err != nil {
		return errors.Join(fmt.Errorf("staging manifest %s: %w", p, err), os.Remove(tmp.Name()))
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return errors.Join(fmt.Errorf("staging manifest %s: %w", p, err), os.Remove(tmp.Name()))
	}
	klog.Background().WithName("packaged").Info("Writing manifest", "path", p)
	return nil
}
