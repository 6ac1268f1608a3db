package packaged

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name     string
		rel      string
		disables map[string]bool
		skips    map[string]bool
		want     fileAction
	}{
		{name: "a YAML file is applied", rel: "coredns.yaml", want: actionApply},
		{name: "a .yml file is applied", rel: "a.yml", want: actionApply},
		{name: "a JSON file in upper case is applied", rel: "a.JSON", want: actionApply},
		{name: "a file in a folder is applied", rel: "dir/a.yaml", want: actionApply},
		{name: "a text file is ignored", rel: "README.md", want: actionIgnore},
		{name: "a dotfile is ignored", rel: ".traefik.yaml.tmp", want: actionIgnore},
		{name: "a skip marker itself is ignored", rel: "traefik.yaml.skip", want: actionIgnore},
		{name: "a file with a .skip file is ignored", rel: "traefik.yaml", skips: map[string]bool{"traefik.yaml": true}, want: actionIgnore},
		{name: "a .skip file applies to the basename anywhere in the tree", rel: "dir/traefik.yaml", skips: map[string]bool{"traefik.yaml": true}, want: actionIgnore},
		{name: "a disabled name disables the file", rel: "traefik.yaml", disables: map[string]bool{"traefik": true}, want: actionDisable},
		{name: "a disabled name disables it in a folder too", rel: "dir/traefik.yml", disables: map[string]bool{"traefik": true}, want: actionDisable},
		{name: "a disabled folder disables every file inside", rel: "metrics-server/x.yaml", disables: map[string]bool{"metrics-server": true}, want: actionDisable},
		{name: "a disabled folder prefix disables nested files", rel: "a/b/c.yaml", disables: map[string]bool{"a/b": true}, want: actionDisable},
		{name: "a disabled component anywhere in the path disables", rel: "a/b/c.yaml", disables: map[string]bool{"b": true}, want: actionDisable},
		{name: "disable wins over skip", rel: "traefik.yaml", disables: map[string]bool{"traefik": true}, skips: map[string]bool{"traefik.yaml": true}, want: actionDisable},
		{name: "a disabled name does not match a non-manifest", rel: "traefik.txt", disables: map[string]bool{"traefik": true}, want: actionIgnore},
		{name: "a disabled name is the name minus the last extension only", rel: "traefik.v2.yaml", disables: map[string]bool{"traefik": true}, want: actionApply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, classify(tt.rel, tt.disables, tt.skips))
		})
	}
}

func TestAddonName(t *testing.T) {
	tests := []struct{ name, path, want string }{
		{name: "the extension goes", path: "/m/coredns.yaml", want: "coredns"},
		{name: "everything after the first dot goes", path: "/m/foo.bar.yaml", want: "foo"},
		{name: "folders do not count", path: "/m/metrics-server/auth-reader.yaml", want: "auth-reader"},
		{name: "an invalid name is kept for the API to reject", path: "/m/example_manifest.yaml", want: "example_manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, addonName(tt.path))
		})
	}
}

func TestScanDir(t *testing.T) {
	dir := t.TempDir()
	other := t.TempDir()
	write := func(p string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, nil, 0o600))
	}
	write(filepath.Join(dir, "b.yaml"))
	write(filepath.Join(dir, "a", "z.yaml"))
	write(filepath.Join(dir, "sub", "traefik.yaml.skip"))
	write(filepath.Join(other, "linked.yaml"))
	require.NoError(t, os.Symlink(other, filepath.Join(dir, "c")))

	res, err := scanDir(dir)
	require.NoError(t, err)
	var rels []string
	linked := map[string]bool{}
	for _, f := range res.files {
		rels = append(rels, f.rel)
		linked[f.rel] = f.linked
	}
	assert.Equal(t, []string{"a/z.yaml", "b.yaml", "c/linked.yaml", "sub/traefik.yaml.skip"}, rels, "sorted, through the top-level link")
	assert.Equal(t, map[string]bool{"traefik.yaml": true}, res.skips)
	assert.True(t, linked["c/linked.yaml"], "files through a link are not unlinked on disable")
	assert.False(t, linked["b.yaml"])
}
