package helmchart

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStaticPath(t *testing.T) {
	for chart, want := range map[string]string{
		"https://%{KUBERNETES_API}%/static/charts/traefik.tgz":   "charts/traefik.tgz",
		" https://%{KUBERNETES_API}%/static/charts/traefik.tgz ": "charts/traefik.tgz",
	} {
		got, ok := StaticPath(chart)
		assert.True(t, ok, chart)
		assert.Equal(t, want, got, chart)
	}
	for _, chart := range []string{"traefik", "https://example.com/static/a.tgz", "https://%{KUBERNETES_API}%/a.tgz"} {
		_, ok := StaticPath(chart)
		assert.False(t, ok, chart)
	}
}

func TestReadStatic(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.tgz")
	require.NoError(t, os.WriteFile(outside, []byte("secret"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "charts"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "charts", "a.tgz"), []byte("12345"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "charts", "link.tgz")))

	data, err := ReadStatic(dir, "charts/a.tgz", 5)
	require.NoError(t, err)
	assert.Equal(t, "12345", string(data))

	_, err = ReadStatic(dir, "charts/a.tgz", 4)
	assert.ErrorContains(t, err, "is larger than 4 bytes")
	_, err = ReadStatic(dir, "../secret.tgz", 100)
	assert.ErrorContains(t, err, "is not a path inside the static directory")
	_, err = ReadStatic(dir, "charts/link.tgz", 100)
	assert.Error(t, err, "a symbolic link out of the directory is not followed")
	_, err = ReadStatic(dir, "charts/missing.tgz", 100)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}
