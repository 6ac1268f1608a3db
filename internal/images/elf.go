package images

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// errLibraryNotFound marks a DT_NEEDED library found in none of the search directories.
var errLibraryNotFound = errors.New("shared library not found")

// multiarchTriple is Debian's multiarch directory name for this architecture.
func multiarchTriple() string {
	switch runtime.GOARCH {
	case "arm64":
		return "aarch64-linux-gnu"
	case "arm":
		return "arm-linux-gnueabihf"
	case "386":
		return "i386-linux-gnu"
	default:
		return "x86_64-linux-gnu"
	}
}

// libraryDirs are the directories Debian's dynamic loader searches for a library when the
// object has no run path and no ld.so.cache names it, in its order. The image holds no
// ld.so.cache, so a library found here is found at the same path in the image.
func libraryDirs() []string {
	t := multiarchTriple()
	return []string{"/lib/" + t, "/usr/lib/" + t, "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
}

// SharedLibraries returns what the dynamic loader maps for binary: its ELF interpreter
// (PT_INTERP) and the closure of its DT_NEEDED libraries, each resolved like the loader
// does, first in the object's DT_RUNPATH (or DT_RPATH) with $ORIGIN expanded, then in the
// Debian multiarch directories. Each File is at the path the loader opens, with the content
// of the file that path resolves to on this machine. A statically linked binary needs
// nothing. Libraries loaded with dlopen (iptables' extensions) are not DT_NEEDED: pass them
// to SharedLibraries themselves.
func SharedLibraries(binary string) ([]File, error) {
	machine, class, err := elfKind(binary)
	if err != nil {
		return nil, err
	}
	found := map[string]File{}
	interp, err := interpreter(binary)
	if err != nil {
		return nil, err
	}
	if interp != "" {
		found[interp] = File{Path: interp, Source: interp}
	}
	queue := []string{binary}
	seen := map[string]bool{binary: true}
	for len(queue) > 0 {
		obj := queue[0]
		queue = queue[1:]
		needed, dirs, err := dynamicNeeds(obj)
		if err != nil {
			return nil, err
		}
		for _, lib := range needed {
			// libc names the loader, which is mapped already: the loader matches the
			// name against its own and never searches for it.
			if interp != "" && lib == filepath.Base(interp) {
				continue
			}
			p, err := findLibrary(lib, append(dirs, libraryDirs()...), machine, class)
			if err != nil {
				return nil, fmt.Errorf("%w: %s, needed by %s", err, lib, obj)
			}
			if _, ok := found[p]; !ok {
				found[p] = File{Path: p, Source: p}
			}
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	out := make([]File, 0, len(found))
	for _, f := range found {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// elfKind returns the machine and class of an ELF file.
func elfKind(p string) (elf.Machine, elf.Class, error) {
	f, err := elf.Open(p)
	if err != nil {
		return 0, 0, fmt.Errorf("reading ELF file %s: %w", p, err)
	}
	defer f.Close()
	return f.Machine, f.Class, nil
}

// interpreter returns the PT_INTERP path of an ELF executable, "" when it has none.
func interpreter(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("reading ELF file %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		data := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(data, 0); err != nil {
			return "", fmt.Errorf("reading the interpreter of %s: %w", p, err)
		}
		return string(bytes.TrimRight(data, "\x00")), nil
	}
	return "", nil
}

// dynamicNeeds returns the DT_NEEDED entries of an ELF object and its run path
// directories: DT_RUNPATH, or DT_RPATH when there is no DT_RUNPATH, with $ORIGIN expanded.
func dynamicNeeds(p string) ([]string, []string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("reading ELF file %s: %w", p, err)
	}
	defer f.Close()
	if f.Section(".dynamic") == nil {
		return nil, nil, nil
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, nil, fmt.Errorf("reading DT_NEEDED of %s: %w", p, err)
	}
	paths, err := f.DynString(elf.DT_RUNPATH)
	if err == nil && len(paths) == 0 {
		paths, err = f.DynString(elf.DT_RPATH)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the run path of %s: %w", p, err)
	}
	var dirs []string
	origin := filepath.Dir(p)
	for _, list := range paths {
		for dir := range strings.SplitSeq(list, ":") {
			dir = strings.ReplaceAll(strings.ReplaceAll(dir, "${ORIGIN}", origin), "$ORIGIN", origin)
			if filepath.IsAbs(dir) {
				dirs = append(dirs, filepath.Clean(dir))
			}
		}
	}
	return needed, dirs, nil
}

// findLibrary returns the first dirs/name that is an ELF object of machine and class, as
// the loader skips libraries of another architecture. A name with a slash is a path.
func findLibrary(name string, dirs []string, machine elf.Machine, class elf.Class) (string, error) {
	candidates := make([]string, 0, len(dirs))
	if strings.Contains(name, "/") {
		candidates = append(candidates, name)
	} else {
		for _, dir := range dirs {
			candidates = append(candidates, filepath.Join(dir, name))
		}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		m, cl, err := elfKind(c)
		if err == nil && m == machine && cl == class {
			return c, nil
		}
	}
	return "", errLibraryNotFound
}
