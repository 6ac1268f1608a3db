package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// archiveFile is one entry of a tarball read back.
type archiveFile struct {
	hdr  *tar.Header
	data []byte
}

// readTar returns the entries of a tarball in order.
func readTar(t *testing.T, data []byte) []archiveFile {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out []archiveFile
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, archiveFile{hdr: hdr, data: body})
	}
}

// tarFiles returns the regular files of a tarball by name.
func tarFiles(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range readTar(t, data) {
		if f.hdr.Typeflag == tar.TypeReg {
			out[f.hdr.Name] = f.data
		}
	}
	return out
}

// writeArchiveBytes runs WriteArchive into memory.
func writeArchiveBytes(t *testing.T, imgs []Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, WriteArchive(&buf, imgs))
	return buf.Bytes()
}

// decodeJSON unmarshals data into a new T.
func decodeJSON[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(data, &v), "decoding %s", data)
	return v
}

// layerOf returns the layer blob of the image named name (fully qualified) in an archive.
func layerOf(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	files := tarFiles(t, archive)
	idx := decodeJSON[ociIndex](t, files["index.json"])
	for _, m := range idx.Manifests {
		if m.Annotations[annotationImageName] != name {
			continue
		}
		man := decodeJSON[ociManifest](t, files[blobPath(m.Digest)])
		require.Len(t, man.Layers, 1)
		return files[blobPath(man.Layers[0].Digest)]
	}
	require.Failf(t, "image not in archive", "%s", name)
	return nil
}

// extractLayer unpacks a layer into dir as a container runtime would: directories, files
// and symlinks with their modes.
func extractLayer(t *testing.T, layer []byte, dir string) {
	t.Helper()
	for _, f := range readTar(t, layer) {
		p := filepath.Join(dir, f.hdr.Name)
		switch f.hdr.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(p, 0o755))
			require.NoError(t, os.Chmod(p, os.FileMode(f.hdr.Mode&0o777)))
		case tar.TypeSymlink:
			require.NoError(t, os.Symlink(f.hdr.Linkname, p))
		case tar.TypeReg:
			require.NoError(t, os.WriteFile(p, f.data, os.FileMode(f.hdr.Mode&0o777)))
		default:
			require.Failf(t, "unexpected entry type", "%s: %c", f.hdr.Name, f.hdr.Typeflag)
		}
	}
}

// needHostFile skips the test when this machine lacks p, and fails it under CI, where
// hack/setup.sh has installed it.
func needHostFile(t *testing.T, p, what string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("needs %s (%s): %v", what, p, err)
		}
		t.Skipf("needs %s (%s; hack/setup.sh installs it): %v", what, p, err)
	}
}

// fakePrograms writes six small files standing for the built programs.
func fakePrograms(t *testing.T) Programs {
	t.Helper()
	dir := t.TempDir()
	write := func(name string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!"+name+"\n"), 0o755))
		return p
	}
	return Programs{
		Pause: write("pause"), CoreDNS: write("coredns"), Traefik: write("traefik"),
		KlipperLB: write("klipper-lb"), TestServer: write("testserver"), KlipperHelm: write("klipper-helm"),
	}
}

// buildStatic builds the main package pkg (relative to this package) as a static binary,
// as hack/build-images.sh does, with the build tags given, and returns its path.
func buildStatic(t *testing.T, pkg string, tags ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("needs the go command to build %s: %v", pkg, err)
		}
		t.Skipf("needs the go command to build %s: %v", pkg, err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command(goTool, "build", "-trimpath", "-tags", strings.Join(tags, ","), "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}
