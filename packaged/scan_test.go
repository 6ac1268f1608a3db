package packaged

import (
	"os"
	"path/filepath"
	"syscall"
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

// stringCase is one row of a table over a string function: the function of in is want.
type stringCase struct{ name, in, want string }

// runStringCases checks f against every row, one subtest each.
func runStringCases(t *testing.T, f func(string) string, tests []stringCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, f(tt.in))
		})
	}
}

func TestAddonName(t *testing.T) {
	runStringCases(t, addonName, []stringCase{
		{name: "the extension goes", in: "coredns.yaml", want: "coredns"},
		{name: "a top-level file keeps K3s's name: everything after the first dot goes", in: "foo.bar.yaml", want: "foo"},
		{name: "a file in a folder is named by its path", in: "metrics-server/auth-reader.yaml", want: "metrics-server.auth-reader"},
		{name: "only the last extension of a file in a folder goes", in: "a/b/foo.custom.yaml", want: "a.b.foo.custom"},
		{name: "an invalid name is kept for the API to reject", in: "example_manifest.yaml", want: "example_manifest"},
	})
}

func TestNameConflicts(t *testing.T) {
	files := func(rels ...string) []manifestFile {
		var out []manifestFile
		for _, r := range rels {
			out = append(out, manifestFile{rel: r, path: "/m/" + r})
		}
		return out
	}
	tests := []struct {
		name    string
		files   []manifestFile
		sources map[string]string
		want    map[string]string
	}{
		{name: "the same basename in two folders does not conflict", files: files("a/config.yaml", "b/config.yaml", "config.yaml"), want: map[string]string{}},
		{
			name:  "foo.custom.yaml beside foo.yaml is refused while foo.yaml keeps its Addon",
			files: files("foo.custom.yaml", "foo.yaml"), sources: map[string]string{"foo": "/m/foo.yaml"},
			want: map[string]string{"/m/foo.custom.yaml": "/m/foo.yaml"},
		},
		{
			name:  "without an Addon the first file in path order keeps the name",
			files: files("foo.json", "foo.yaml"),
			want:  map[string]string{"/m/foo.yaml": "/m/foo.json"},
		},
		{
			name:  "an Addon source that is no longer a file does not count",
			files: files("foo.json", "foo.yaml"), sources: map[string]string{"foo": "/m/gone.yaml"},
			want: map[string]string{"/m/foo.yaml": "/m/foo.json"},
		},
		{
			name:  "folder names with dots can meet, and are refused",
			files: files("a.b/c.yaml", "a/b.c.yaml"), sources: map[string]string{"a.b.c": "/m/a/b.c.yaml"},
			want: map[string]string{"/m/a.b/c.yaml": "/m/a/b.c.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, nameConflicts(tt.files, func(name string) string { return tt.sources[name] }))
		})
	}
}

func TestReadManifest(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "a.yaml")
	require.NoError(t, os.WriteFile(regular, []byte("0123456789"), 0o600))
	linked := filepath.Join(dir, "link.yaml")
	require.NoError(t, os.Symlink(regular, linked))
	fifo := filepath.Join(dir, "fifo.yaml")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	fifoLink := filepath.Join(dir, "fifo-link.yaml")
	require.NoError(t, os.Symlink(fifo, fifoLink))
	zero := filepath.Join(dir, "zero.yaml")
	require.NoError(t, os.Symlink("/dev/zero", zero))

	tests := []struct {
		name    string
		path    string
		max     int64
		want    string
		wantErr error
	}{
		{name: "a regular file is read", path: regular, max: 10, want: "0123456789"},
		{name: "a symlink to a regular file is followed", path: linked, max: 10, want: "0123456789"},
		{name: "a file over the limit is refused", path: regular, max: 9, wantErr: errManifestTooLarge},
		{name: "a named pipe is refused without blocking", path: fifo, max: 10, wantErr: errNotRegular},
		{name: "a symlink to a named pipe is refused without blocking", path: fifoLink, max: 10, wantErr: errNotRegular},
		{name: "a symlink to /dev/zero is refused", path: zero, max: 10, wantErr: errNotRegular},
		{name: "a directory is refused", path: dir, max: 10, wantErr: errNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readManifest(tt.path, tt.max)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
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
