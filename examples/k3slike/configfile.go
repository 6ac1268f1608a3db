package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// defaultConfigFile is K3s's --config default.
const defaultConfigFile = "/etc/rancher/k3s/config.yaml"

// configDoc is one config file's content.
type configDoc struct {
	path string
	data []byte
}

// configValue is a key's value after merging the files: its items, where each came from, and
// whether it was a YAML list (or appended to with key+).
type configValue struct {
	items []string
	files []string
	list  bool
}

// file names where the value came from, the last file that set or appended to it.
func (v configValue) file() string { return v.files[len(v.files)-1] }

// readFile reads name (absolute, or relative to the working directory) from fsys, the root
// file system.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	return fs.ReadFile(fsys, strings.TrimPrefix(name, "/"))
}

// configFiles lists the files K3s reads for config file name: the file itself, then the
// *.yaml and *.yml files of name.d in lexical order. A missing file is an error only when
// explicit and without drop-ins.
func configFiles(fsys fs.FS, name string, explicit bool) ([]configDoc, error) {
	if abs, err := filepath.Abs(name); err == nil {
		name = abs
	}
	rel := strings.TrimPrefix(name, "/")
	var docs []configDoc
	data, err := fs.ReadFile(fsys, rel)
	switch {
	case err == nil:
		docs = append(docs, configDoc{path: name, data: data})
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	entries, err := fs.ReadDir(fsys, rel+".d")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading config drop-ins: %w", err)
	}
	for _, e := range entries { // ReadDir sorts by name
		ext := strings.ToLower(path.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		data, err := fs.ReadFile(fsys, rel+".d/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading config drop-in: %w", err)
		}
		docs = append(docs, configDoc{path: name + ".d/" + e.Name(), data: data})
	}
	if len(docs) == 0 && explicit {
		return nil, fmt.Errorf("config file %s: %w", name, fs.ErrNotExist)
	}
	return docs, nil
}

// mergeConfig merges config documents as K3s does: a key's value in a later file replaces the
// earlier one, and a key ending in + (node-label+:) appends to it instead.
func mergeConfig(docs []configDoc) (map[string]configValue, error) {
	out := map[string]configValue{}
	var errs []error
	for _, d := range docs {
		var m map[string]any
		if err := yaml.Unmarshal(d.data, &m); err != nil {
			errs = append(errs, fmt.Errorf("config file %s: %w", d.path, err))
			continue
		}
		// Replacing keys first, then appending ones, so "a" and "a+" in one file append.
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			return strings.Compare(strings.TrimSuffix(a, "+")+strconv.FormatBool(strings.HasSuffix(a, "+")),
				strings.TrimSuffix(b, "+")+strconv.FormatBool(strings.HasSuffix(b, "+")))
		})
		for _, k := range keys {
			items, list, err := configItems(m[k])
			if err != nil {
				errs = append(errs, fmt.Errorf("config file %s: key %q: %w", d.path, k, err))
				continue
			}
			files := slices.Repeat([]string{d.path}, max(len(items), 1))
			key, appending := strings.CutSuffix(k, "+")
			if old, ok := out[key]; ok && appending {
				out[key] = configValue{items: append(old.items, items...), files: append(old.files, files...), list: true}
				continue
			}
			out[key] = configValue{items: items, files: files, list: list || appending}
		}
	}
	return out, errors.Join(errs...)
}

// configItems turns a YAML value into flag values: a scalar is one, a list of scalars many.
func configItems(v any) (items []string, list bool, err error) {
	if l, ok := v.([]any); ok {
		for _, item := range l {
			s, err := configScalar(item)
			if err != nil {
				return nil, true, err
			}
			items = append(items, s)
		}
		return items, true, nil
	}
	s, err := configScalar(v)
	return []string{s}, false, err
}

func configScalar(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64: // YAML numbers, through JSON
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	default:
		return "", fmt.Errorf("want a string, number, boolean or a list of them, not %T", v)
	}
}
