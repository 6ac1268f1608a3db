package images

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLayerEntries(t *testing.T) {
	src := filepath.Join(t.TempDir(), "prog")
	require.NoError(t, os.WriteFile(src, []byte("12345"), 0o750))
	dir := func(p string, mode fs.FileMode) File { return File{Path: p, Mode: fs.ModeDir | mode} }
	tests := []struct {
		name    string
		files   []File
		want    []layerEntry
		wantErr bool
	}{
		{
			name:  "parent directories are added and sorted before their content",
			files: []File{{Path: "/usr/sbin/x", Link: "y"}, {Path: "/a", Data: []byte("hi")}},
			want: []layerEntry{
				{File: File{Path: "/a", Mode: 0o644, Data: []byte("hi")}, size: 2},
				{File: dir("/usr", 0o755)},
				{File: dir("/usr/sbin", 0o755)},
				{File: File{Path: "/usr/sbin/x", Mode: 0o777, Link: "y"}},
			},
		},
		{
			name:  "a listed directory keeps its mode and a source file its size and mode",
			files: []File{{Path: "/tmp/p", Source: src}, dir("/tmp", 0o777|fs.ModeSticky)},
			want: []layerEntry{
				{File: dir("/tmp", 0o777|fs.ModeSticky)},
				{File: File{Path: "/tmp/p", Mode: 0o750, Source: src}, size: 5},
			},
		},
		{
			name:  "an explicit mode wins over the source's",
			files: []File{{Path: "/p", Source: src, Mode: 0o755}},
			want:  []layerEntry{{File: File{Path: "/p", Mode: 0o755, Source: src}, size: 5}},
		},
		{
			name:  "the same directory listed twice is one entry",
			files: []File{dir("/d", 0o700), dir("/d", 0o700)},
			want:  []layerEntry{{File: dir("/d", 0o700)}},
		},
		{name: "a path listed twice is an error", files: []File{{Path: "/a", Data: []byte{}}, {Path: "/a", Link: "b"}}, wantErr: true},
		{name: "a relative path is an error", files: []File{{Path: "a", Data: []byte{}}}, wantErr: true},
		{name: "an unclean path is an error", files: []File{{Path: "/a/../b", Data: []byte{}}}, wantErr: true},
		{name: "the root is not a file", files: []File{dir("/", 0o755)}, wantErr: true},
		{name: "a file with two contents is an error", files: []File{{Path: "/a", Data: []byte{}, Link: "b"}}, wantErr: true},
		{name: "a file without content is an error", files: []File{{Path: "/a"}}, wantErr: true},
		{name: "a file inside a file is an error", files: []File{{Path: "/a", Data: []byte{}}, {Path: "/a/b", Data: []byte{}}}, wantErr: true},
		{name: "a missing source is an error", files: []File{{Path: "/a", Source: filepath.Join(t.TempDir(), "none")}}, wantErr: true},
		{name: "a device mode is an error", files: []File{{Path: "/a", Data: []byte{}, Mode: fs.ModeDevice}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := layerEntries(tt.files)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWriteLayerHeaders(t *testing.T) {
	entries, err := layerEntries([]File{
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "/bin/tool", Mode: 0o755 | fs.ModeSetuid, Data: []byte("abc")},
		{Path: "/bin/alias", Link: "tool"},
	})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, writeLayer(&buf, entries))

	type entry struct {
		Name     string
		Type     byte
		Mode     int64
		Link     string
		Body     string
		Uid, Gid int
		ModTime  time.Time
	}
	var got []entry
	for _, f := range readTar(t, buf.Bytes()) {
		got = append(got, entry{f.hdr.Name, f.hdr.Typeflag, f.hdr.Mode, f.hdr.Linkname, string(f.data), f.hdr.Uid, f.hdr.Gid, f.hdr.ModTime.UTC()})
	}
	epoch := time.Unix(0, 0).UTC()
	want := []entry{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755, ModTime: epoch},
		{Name: "bin/alias", Type: tar.TypeSymlink, Mode: 0o777, Link: "tool", ModTime: epoch},
		{Name: "bin/tool", Type: tar.TypeReg, Mode: 0o4755, Body: "abc", ModTime: epoch},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777, ModTime: epoch},
	}
	assert.Equal(t, want, got)
}

func TestWriteContentRejectsAChangedSource(t *testing.T) {
	src := filepath.Join(t.TempDir(), "grows")
	require.NoError(t, os.WriteFile(src, []byte("12345"), 0o644))
	entries, err := layerEntries([]File{{Path: "/f", Source: src}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(src, []byte("123"), 0o644))
	require.Error(t, writeLayer(&bytes.Buffer{}, entries))
}
