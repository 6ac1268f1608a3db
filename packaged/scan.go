package packaged

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// skipSuffix marks a file X.skip that stops the deploy controller from touching X.
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
	// deletes their objects but does not unlink them (as K3s's deploy controller).
	linked bool
}

// classify decides what a pass does with the file at the slash-separated relative path rel
// (K3s's deploy controller's rules). The disable check comes first: the file is disabled when any parent
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

// addonName returns the name of the Addon that tracks the file at the slash-separated path
// rel (relative to the manifests directory). A top-level file keeps K3s's name, its basename
// up to the first dot (coredns.yaml and coredns.v2.yaml are both "coredns"), so the Addons and
// objects K3s created are adopted. K3s names a file in a folder by its basename alone, so two
// folders' config.yaml shared one Addon and pruned each other's objects (K3s #1369, #9500);
// k3snet names it by its whole path without the last extension, folders joined by dots
// (metrics-server/auth-reader.yaml is "metrics-server.auth-reader"). Such a name has a dot
// and a top-level one never has, so the two cannot meet; the names that still coincide
// (foo.yaml beside foo.custom.yaml, a/b.c.yaml beside a.b/c.yaml) are refused by
// nameConflicts rather than shared.
func addonName(rel string) string {
	rel = filepath.ToSlash(rel)
	if dir, base := path.Split(rel); dir == "" {
		name, _, _ := strings.Cut(base, ".")
		return name
	}
	return strings.ReplaceAll(strings.TrimSuffix(rel, path.Ext(rel)), "/", ".")
}

// nameConflicts returns, for every file of files that shares its Addon name with another,
// the path of the file that keeps the name, keyed by the refused file's path: the file the
// Addon's spec.source already names (source returns it, "" when there is no Addon), else the
// first in path order. A refused file is neither applied nor disabled, so it never prunes
// the objects of the file that keeps the name.
func nameConflicts(files []manifestFile, source func(addon string) string) map[string]string {
	byName := map[string][]manifestFile{}
	var names []string
	for _, f := range files {
		name := addonName(f.rel)
		if len(byName[name]) == 0 {
			names = append(names, name)
		}
		byName[name] = append(byName[name], f)
	}
	refused := map[string]string{}
	for _, name := range names {
		group := byName[name]
		if len(group) < 2 {
			continue
		}
		keeper := group[0].path
		if src := source(name); src != "" && slices.ContainsFunc(group, func(f manifestFile) bool { return f.path == src }) {
			keeper = src
		}
		for _, f := range group {
			if f.path != keeper {
				refused[f.path] = keeper
			}
		}
	}
	return refused
}

// scanResult is the manifests directory as one pass sees it.
type scanResult struct {
	// files are the regular files, sorted by rel: the only ordering K3s's deploy controller
	// guarantees, which k3snet keeps apart from CRDs going first.
	files []manifestFile
	// skips holds X for every file named X.skip, wherever it is in the tree.
	skips map[string]bool
	// dirs are the directories seen, for the file watcher.
	dirs []string
}

// scanDir walks dir recursively. A top-level symlink to a directory is followed (one level,
// as K3s); deeper symlinks to directories are not. A symlink to anything else is listed, as
// K3s reads manifests through links (NixOS links each one into its store): readManifest
// then reads it only if it leads to a regular file. Other special files are left out.
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

// defaultMaxManifestBytes bounds what the deploy loop reads of one manifest. K3s reads any
// size; the biggest manifests in common use, operators' CRD bundles, are a few MiB, and a
// file's objects are parsed and held in memory at once.
const defaultMaxManifestBytes = 32 << 20

var (
	// errNotRegular refuses a manifest that is, or links to, a named pipe, a device, a
	// socket or a directory: reading a pipe blocks the deploy loop until a writer comes,
	// and a device such as /dev/zero never ends.
	errNotRegular = errors.New("not a regular file")
	// errManifestTooLarge refuses a manifest longer than the limit.
	errManifestTooLarge = errors.New("manifest too large")
)

// readManifest reads the regular file at p (through symlinks), refusing anything longer
// than max bytes. It opens without blocking, so a named pipe cannot stall the loop, and
// checks the opened file rather than the name, so a file swapped after the scan is refused
// too.
func readManifest(p string, max int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: it is a %s", errNotRegular, fileType(fi.Mode()))
	}
	limit := fmt.Sprintf("%d bytes", max)
	if max%(1<<20) == 0 {
		limit = fmt.Sprintf("%d MiB", max>>20)
	}
	tooLarge := fmt.Errorf("%w: larger than the limit of %s", errManifestTooLarge, limit)
	if fi.Size() > max {
		return nil, tooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, tooLarge // it grew after the Stat
	}
	return data, nil
}

// fileType names the type of a file that is not regular, for messages.
func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}
