package images

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoImages are two small images; the files of the second are listed out of order.
func twoImages(t *testing.T) []Image {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	require.NoError(t, os.WriteFile(bin, []byte("\x7fELF not really"), 0o755))
	return []Image{
		{
			Name:       "k3snet.local/one:v1",
			Entrypoint: []string{"/server"},
			Cmd:        []string{"serve"},
			Env:        []string{"PATH=/bin"},
			Files:      []File{{Path: "/server", Source: bin}},
		},
		{
			Name:       "rancher/two:1.0",
			Entrypoint: []string{"/bin/two"},
			User:       "65534",
			WorkingDir: "/tmp",
			Files: []File{
				{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
				{Path: "/bin/two", Source: bin, Mode: 0o755},
				{Path: "/bin/alias", Link: "two"},
				{Path: "/etc/passwd", Data: []byte("root:x:0:0::/:/bin/two\n")},
			},
		},
	}
}

func TestWriteArchiveIsDeterministic(t *testing.T) {
	imgs := twoImages(t)
	first := writeArchiveBytes(t, imgs)

	shuffled := twoImages(t)
	slices.Reverse(shuffled[1].Files)
	second := writeArchiveBytes(t, shuffled)

	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	assert.Equal(t, sum(first), sum(second), "same images with files listed in another order and sources at other paths")
	assert.Equal(t, first, writeArchiveBytes(t, imgs), "the same inputs twice")
}

func TestWriteArchiveLayout(t *testing.T) {
	imgs := twoImages(t)
	archive := writeArchiveBytes(t, imgs)
	entries := readTar(t, archive)
	files := tarFiles(t, archive)

	var names []string
	for _, e := range entries {
		names = append(names, e.hdr.Name)
		assert.Zero(t, e.hdr.Uid, e.hdr.Name)
		assert.Zero(t, e.hdr.ModTime.Unix(), e.hdr.Name)
	}
	require.GreaterOrEqual(t, len(names), 5)
	assert.Equal(t, []string{"oci-layout", "index.json", "manifest.json", "blobs/", "blobs/sha256/"}, names[:5])
	assert.JSONEq(t, `{"imageLayoutVersion":"1.0.0"}`, string(files["oci-layout"]))

	// Every blob is stored under its own digest.
	for name, data := range files {
		if dgst, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			s := sha256.Sum256(data)
			assert.Equal(t, hex.EncodeToString(s[:]), dgst, "blob %s", name)
		}
	}

	idx := decodeJSON[ociIndex](t, files["index.json"])
	assert.Equal(t, 2, idx.SchemaVersion)
	assert.Equal(t, mediaTypeIndex, idx.MediaType)
	require.Len(t, idx.Manifests, 2)
	wantNames := []struct{ full, tag, familiar string }{
		{"k3snet.local/one:v1", "v1", "k3snet.local/one:v1"},
		{"docker.io/rancher/two:1.0", "1.0", "rancher/two:1.0"},
	}
	docker := decodeJSON[[]dockerManifest](t, files["manifest.json"])
	require.Len(t, docker, 2)

	for i, m := range idx.Manifests {
		want := wantNames[i]
		t.Run(want.full, func(t *testing.T) {
			assert.Equal(t, mediaTypeManifest, m.MediaType)
			assert.Equal(t, map[string]string{annotationImageName: want.full, annotationRefName: want.tag}, m.Annotations)
			assert.Equal(t, &platform{Architecture: runtime.GOARCH, OS: "linux"}, m.Platform)
			manifestData := files[blobPath(m.Digest)]
			assert.Equal(t, m.Size, int64(len(manifestData)))

			man := decodeJSON[ociManifest](t, manifestData)
			assert.Equal(t, 2, man.SchemaVersion)
			assert.Equal(t, mediaTypeConfig, man.Config.MediaType)
			configData := files[blobPath(man.Config.Digest)]
			assert.Equal(t, man.Config.Size, int64(len(configData)))
			require.Len(t, man.Layers, 1)
			assert.Equal(t, mediaTypeLayer, man.Layers[0].MediaType)
			layer := files[blobPath(man.Layers[0].Digest)]
			assert.Equal(t, man.Layers[0].Size, int64(len(layer)))

			cfg := decodeJSON[imageConfig](t, configData)
			assert.Equal(t, runtime.GOARCH, cfg.Architecture)
			assert.Equal(t, "linux", cfg.OS)
			assert.Equal(t, rootFS{Type: "layers", DiffIDs: []string{man.Layers[0].Digest}}, cfg.RootFS)
			img := imgs[i]
			assert.Equal(t, runtimeConfig{User: img.User, Env: img.Env, Entrypoint: img.Entrypoint, Cmd: img.Cmd, WorkingDir: img.WorkingDir}, cfg.Config)

			assert.Equal(t, dockerManifest{
				Config:   blobPath(man.Config.Digest),
				RepoTags: []string{want.familiar},
				Layers:   []string{blobPath(man.Layers[0].Digest)},
			}, docker[i])
		})
	}

	var layerNames []string
	for _, e := range readTar(t, layerOf(t, archive, "docker.io/rancher/two:1.0")) {
		layerNames = append(layerNames, e.hdr.Name)
	}
	assert.Equal(t, []string{"bin/", "bin/alias", "bin/two", "etc/", "etc/passwd", "tmp/"}, layerNames)
}

func TestWriteArchiveSharesIdenticalBlobs(t *testing.T) {
	files := []File{{Path: "/x", Data: []byte("same")}}
	archive := writeArchiveBytes(t, []Image{{Name: "a/one:1", Files: files}, {Name: "a/two:1", Files: files}})
	idx := decodeJSON[ociIndex](t, tarFiles(t, archive)["index.json"])
	require.Len(t, idx.Manifests, 2)
	assert.Equal(t, idx.Manifests[0].Digest, idx.Manifests[1].Digest, "the same content is the same manifest")
	assert.NotEqual(t, idx.Manifests[0].Annotations, idx.Manifests[1].Annotations)

	var blobs []string
	for _, e := range readTar(t, archive) {
		if strings.HasPrefix(e.hdr.Name, "blobs/sha256/") && e.hdr.Name != "blobs/sha256/" {
			blobs = append(blobs, e.hdr.Name)
		}
	}
	assert.Len(t, blobs, 3, "one config, one manifest and one layer: %v", blobs)
}

func TestWriteArchiveRejects(t *testing.T) {
	tests := []struct {
		name string
		imgs []Image
	}{
		{name: "two images whose names normalize alike", imgs: []Image{{Name: "busybox"}, {Name: "docker.io/library/busybox:latest"}}},
		{name: "an invalid name", imgs: []Image{{Name: "Bad Name"}}},
		{name: "an invalid file", imgs: []Image{{Name: "a", Files: []File{{Path: "rel", Data: []byte{}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, WriteArchive(io.Discard, tt.imgs))
		})
	}
}
