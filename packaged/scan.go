package packaged

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// skipSuffix marks a file X.skip that stops the deploy controller from touching X (spec A.6).
const skipSuffix = ".skip"

// fileAction is what one pass does with one file of the manifests directory.
type fileAction int

const (
	// actionIgnore leaves the file alone: a dotfile, a non-manifest, or frozen by a .skip file.
	actionIgnore fileAction = iota
	// actionApply applies the file's objects.
	actionApply
	// actionDisable deletes the file's objects, the file and its Addon.
	actionDisable
)

// manifestFile is one regular file found under the manifests directory.
type manifestFile struct {
	// rel is the slash-separated path relative to the manifests directory (through a
	// followed symlink it is the logical path, not the target's).
	rel string
	// path is the path on disk, used as Addon spec.source.
	path string
	// linked is set for files reached through a symlinked directory: the disable path
	// deletes their objects but does not unlink them (spec A.6 step 6).
	linked bool
}

// classify decides what a pass does with the file at the slash-separated relative path rel
// (spec A.6 step 4). The disable check comes first: the file is disabled when any parent
// directory component or joined prefix is in disables, or, for a manifest, its basename minus
// the last extension is. Otherwise dotfiles, non-manifests and files X with an X.skip
// somewhere in the tree (skips holds the X basenames) are ignored.
func classify(rel string, disables, skips map[string]bool) fileAction {
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir != "" {
		parts := strings.Split(dir, "/")
		for i := range parts {
			if disables[parts[i]] || disables[strings.Join(parts[:i+1], "/")] {
				return actionDisable
			}
		}
	}
	manifest := isManifest(base)
	if manifest && disables[strings.TrimSuffix(base, path.Ext(base))] {
		return actionDisable
	}
	if strings.HasPrefix(base, ".") || skips[base] || !manifest {
		return actionIgnore
	}
	return actionApply
}

// isManifest reports whether name ends in .yaml, .yml or .json, in any case.
func isManifest(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// addonName returns the name of the Addon that tracks the file at p: its basename up to the
// first dot (spec A.6), so foo.bar.yaml and dir/foo.yaml share Addon "foo".
func addonName(p string) string {
	base := path.Base(filepath.ToSlash(p))
	name, _, _ := strings.Cut(base, ".")
	return name
}

// scanResult is the manifests directory as one pass sees it.
type scanResult struct {
	// files are the regular files, sorted by rel: the only ordering K3s guarantees (spec
	// A.6 step 3), which k3snet keeps apart from CRDs going first.
	files []manifestFile
	// skips holds X for every file named X.skip, wherever it is in the tree.
	skips map[string]bool
	// dirs are the directories seen, for the file watcher.
	dirs []string
}

// scanDir walks dir recursively. A top-level symlink to a directory is followed (one level,
// as K3s); deeper symlinks are not.
func scanDir(dir string) (scanResult, error) {
	res := scanResult{skips: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			res.dirs = append(res.dirs, p)
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			fi, err := os.Stat(p)
			if err != nil {
				return nil // a dangling link is not a manifest
			}
			if fi.IsDir() {
				if strings.Contains(rel, "/") {
					return nil // only top-level links are followed
				}
				return walkLinked(&res, p, rel)
			}
		case !d.Type().IsRegular():
			return nil
		}
		if strings.HasSuffix(d.Name(), skipSuffix) {
			res.skips[strings.TrimSuffix(d.Name(), skipSuffix)] = true
		}
		res.files = append(res.files, manifestFile{rel: rel, path: p})
		return nil
	})
	if err != nil {
		return scanResult{}, fmt.Errorf("scanning manifests directory %s: %w", dir, err)
	}
	sort.Slice(res.files, func(i, j int) bool { return res.files[i].rel < res.files[j].rel })
	return res, nil
}

// walkLinked adds the files under the directory a top-level symlink at p points to, with
// logical paths under rel.
func walkLinked(res *scanResult, p, rel string) error {
	// WalkDir does not descend into a symlinked root, so walk the resolved target.
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil // the link broke since it was read: nothing to apply through it
	}
	res.dirs = append(res.dirs, target)
	return filepath.WalkDir(target, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		sub, err := filepath.Rel(target, q)
		if err != nil {
			return err
		}
		if strings.HasSuffix(d.Name(), skipSuffix) {
			res.skips[strings.TrimSuffix(d.Name(), skipSuffix)] = true
		}
		res.files = append(res.files, manifestFile{rel: path.Join(rel, filepath.ToSlash(sub)), path: q, linked: true})
		return nil
	})
}
