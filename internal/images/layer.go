package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// errInvalidFile marks a File that cannot go into a layer.
var errInvalidFile = errors.New("invalid image file")

// layerEntry is one tar entry of a layer, in the order the layer holds it.
type layerEntry struct {
	File
	size int64 // of a regular file's content
}

// isDir reports whether f is a directory entry.
func (f File) isDir() bool { return f.Mode&fs.ModeDir != 0 }

// layerEntries checks files and returns the layer's entries: every file, plus the parent
// directories files does not list (0755), sorted by path so that a directory precedes its
// content. It stats Source files for their size and default mode.
func layerEntries(files []File) ([]layerEntry, error) {
	byPath := make(map[string]layerEntry, len(files))
	var errs []error
	for _, f := range files {
		e, err := checkFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := byPath[f.Path]; ok {
			if !(prev.isDir() && e.isDir() && prev.Mode == e.Mode) {
				errs = append(errs, fmt.Errorf("%w: %s is listed twice", errInvalidFile, f.Path))
			}
			continue
		}
		byPath[f.Path] = e
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for p := range byPath {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			parent, ok := byPath[dir]
			if !ok {
				byPath[dir] = layerEntry{File: File{Path: dir, Mode: fs.ModeDir | 0o755}}
				continue
			}
			if !parent.isDir() {
				errs = append(errs, fmt.Errorf("%w: %s is inside %s, which is not a directory", errInvalidFile, p, dir))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]layerEntry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	// A path sorts before every path it is a prefix of, so parents come first.
	slices.SortFunc(out, func(a, b layerEntry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// checkFile validates f and fills in the size and default mode of its content.
func checkFile(f File) (layerEntry, error) {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return layerEntry{}, fmt.Errorf("%w: path %q is not a clean absolute path below /", errInvalidFile, f.Path)
	}
	kinds := 0
	for _, set := range []bool{f.Source != "", f.Data != nil, f.Link != "", f.isDir()} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return layerEntry{}, fmt.Errorf("%w: %s needs exactly one of Source, Data, Link or a directory mode", errInvalidFile, f.Path)
	}
	if f.Mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky|fs.ModeDir) != 0 {
		return layerEntry{}, fmt.Errorf("%w: %s has unsupported mode %v", errInvalidFile, f.Path, f.Mode)
	}
	e := layerEntry{File: f}
	switch {
	case f.Source != "":
		fi, err := os.Stat(f.Source)
		if err != nil {
			return layerEntry{}, fmt.Errorf("image file %s: %w", f.Path, err)
		}
		if !fi.Mode().IsRegular() {
			return layerEntry{}, fmt.Errorf("%w: %s: source %s is not a regular file", errInvalidFile, f.Path, f.Source)
		}
		e.size = fi.Size()
		if e.Mode.Perm() == 0 {
			e.Mode |= fi.Mode().Perm()
		}
	case f.Data != nil:
		e.size = int64(len(f.Data))
		if e.Mode.Perm() == 0 {
			e.Mode |= 0o644
		}
	case f.Link != "":
		e.Mode = 0o777
	}
	return e, nil
}

// entryTime is the modification time of every tar entry the archive holds: a fixed time
// keeps digests independent of when the inputs were built.
func entryTime() time.Time { return time.Unix(0, 0) }

// tarMode converts a FileMode's permission and special bits into tar's (Unix) form.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// writeLayer writes the layer tar of entries to w: uid and gid 0, no user names, fixed times.
func writeLayer(w io.Writer, entries []layerEntry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(e.Path, "/"),
			Mode:    tarMode(e.Mode),
			ModTime: entryTime(),
			Format:  tar.FormatPAX,
		}
		switch {
		case e.isDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case e.Link != "":
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.Link
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing layer entry %s: %w", e.Path, err)
		}
		if err := writeContent(tw, e); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeContent copies a regular file's content; a source whose size changed since
// layerEntries looked at it is an error, as the tar header already holds the old size.
func writeContent(w io.Writer, e layerEntry) error {
	if e.Data != nil {
		_, err := w.Write(e.Data)
		return err
	}
	if e.Source == "" {
		return nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return fmt.Errorf("image file %s: %w", e.Path, err)
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, e.size+1))
	if err != nil {
		return fmt.Errorf("image file %s: copying %s: %w", e.Path, e.Source, err)
	}
	if n != e.size {
		return fmt.Errorf("image file %s: %s changed size while being written (%d bytes, expected %d)", e.Path, e.Source, n, e.size)
	}
	return nil
}
