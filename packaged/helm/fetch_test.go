package helm

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// archiveHost serves tinyChart at /x-0.1.0.tgz and counts requests carrying credentials.
type archiveHost struct {
	url       string
	withAuth  atomic.Int64
	downloads atomic.Int64
}

func newArchiveHost(t *testing.T) *archiveHost {
	t.Helper()
	h := &archiveHost{}
	archive := tinyChart(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, _, ok := req.BasicAuth(); ok {
			h.withAuth.Add(1)
		}
		h.downloads.Add(1)
		_, _ = w.Write(archive)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// indexHost serves an index.yaml listing x at version with the archive at archiveURL.
func indexHost(t *testing.T, archiveURL string, versions map[string]string) string {
	t.Helper()
	idx := repo.NewIndexFile()
	for version, digest := range versions {
		require.NoError(t, idx.MustAdd(&chart.Metadata{APIVersion: "v2", Name: "x", Version: version}, archiveURL, "", digest))
	}
	index, err := yaml.Marshal(idx)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/index.yaml" {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write(index)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFetchFromRepoSendsCredentialsOnlyWhereAllowed(t *testing.T) {
	tests := []struct {
		name            string
		passCredentials bool
		wantAuth        int64
	}{
		{name: "archives on another host get no credentials", wantAuth: 0},
		{name: "authPassCredentials sends them there too", passCredentials: true, wantAuth: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archives := newArchiveHost(t)
			repoURL := indexHost(t, archives.url+"/x-0.1.0.tgz", map[string]string{"0.1.0": sha256Hex(tinyChart(t))})
			f := newChartFetcher(10*time.Second, "")
			src := chartSource{kind: sourceRepo, ref: "x", repo: repoURL}
			_, _, err := f.fetch(src, fetchAuth{username: "u", password: "p", passCredentials: tt.passCredentials})
			require.NoError(t, err)
			assert.Equal(t, tt.wantAuth, archives.withAuth.Load())
		})
	}
}

func TestFetchFromRepoPicksVersionsAsHelm(t *testing.T) {
	digest := sha256Hex(tinyChart(t))
	tests := []struct {
		name     string
		versions map[string]string
		version  string
		wantErr  string
	}{
		{name: "an exact version", versions: map[string]string{"0.1.0": digest}, version: "0.1.0"},
		{name: "a constraint", versions: map[string]string{"0.1.0": digest}, version: "~0.1"},
		{name: "no version is the newest", versions: map[string]string{"0.1.0": digest, "0.1.1-rc.1": "00"}},
		{name: "a version the index lacks", versions: map[string]string{"0.1.0": digest}, version: "2.0.0", wantErr: "no chart version found"},
		{name: "an archive whose digest differs from the index's", versions: map[string]string{"0.1.0": "00"}, wantErr: "the index says 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archives := newArchiveHost(t)
			repoURL := indexHost(t, archives.url+"/x-0.1.0.tgz", tt.versions)
			f := newChartFetcher(10*time.Second, "")
			src := chartSource{kind: sourceRepo, ref: "x", repo: repoURL, version: tt.version}
			_, data, err := f.fetch(src, fetchAuth{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, digest, sha256Hex(data))
			_, _, err = f.fetch(src, fetchAuth{})
			require.NoError(t, err)
			assert.Equal(t, int64(1), archives.downloads.Load(), "the second fetch is served from the cache")
		})
	}
}

func TestFetchStopsReadingPastItsByteBudget(t *testing.T) {
	// An endless body, chunked, as a broken or hostile server might send.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		chunk := make([]byte, 64<<10)
		for req.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	f := newChartFetcher(10*time.Second, "")
	f.maxBytes = 1 << 20
	_, _, err := f.fetch(chartSource{kind: sourceURL, ref: srv.URL + "/endless.tgz"}, fetchAuth{})
	require.ErrorIs(t, err, errDownloadTooLarge)
	assert.ErrorContains(t, err, "more than 1 MiB read")

	// The budget is per fetch: two archives of 600 KiB each fit one of 1 MiB each.
	archive := paddedChart(t, 600<<10)
	archives := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = w.Write(archive)
	}))
	t.Cleanup(archives.Close)
	for _, name := range []string{"/a.tgz", "/b.tgz"} {
		_, data, err := f.fetch(chartSource{kind: sourceURL, ref: archives.URL + name}, fetchAuth{})
		require.NoError(t, err, name)
		assert.Equal(t, archive, data)
	}
}

func TestFetchReadsStaticChartsFromTheStaticDirectoryOnly(t *testing.T) {
	static := t.TempDir()
	archive := tinyChart(t)
	require.NoError(t, os.MkdirAll(filepath.Join(static, "charts"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(static, "charts", "x-0.1.0.tgz"), archive, 0o644))
	outside := filepath.Join(t.TempDir(), "secret.tgz")
	require.NoError(t, os.WriteFile(outside, []byte("not yours"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(static, "charts", "link.tgz")))

	f := newChartFetcher(10*time.Second, static)
	_, data, err := f.fetch(chartSource{kind: sourceStatic, ref: "charts/x-0.1.0.tgz"}, fetchAuth{})
	require.NoError(t, err)
	assert.Equal(t, archive, data)

	_, _, err = f.fetch(chartSource{kind: sourceStatic, ref: "charts/missing.tgz"}, fetchAuth{})
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, "https://%{KUBERNETES_API}%/static/charts/missing.tgz")
	_, _, err = f.fetch(chartSource{kind: sourceStatic, ref: "charts/link.tgz"}, fetchAuth{})
	assert.Error(t, err, "a symbolic link out of the static directory is not followed")

	_, _, err = newChartFetcher(10*time.Second, "").fetch(chartSource{kind: sourceStatic, ref: "charts/x-0.1.0.tgz"}, fetchAuth{})
	assert.ErrorIs(t, err, errUnsupportedChartSource)
}

// paddedChart packs chart x with an incompressible file, so the archive is over n bytes.
func paddedChart(t *testing.T, n int) []byte {
	t.Helper()
	pad := make([]byte, n)
	_, err := rand.Read(pad)
	require.NoError(t, err)
	data, err := helmchart.Archive(fstest.MapFS{
		"x/Chart.yaml": {Data: []byte("apiVersion: v2\nname: x\nversion: 0.1.0\n")},
		"x/files/pad":  {Data: pad},
	}, "x")
	require.NoError(t, err)
	require.Greater(t, len(data), n)
	return data
}

func TestFetchCachesOnlyArchivesThatLoad(t *testing.T) {
	archive := tinyChart(t)
	var downloads atomic.Int64
	// The first answer is an error page with status 200, as a captive portal or a
	// misconfigured proxy sends; later answers are the archive.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if downloads.Add(1) == 1 {
			_, _ = w.Write([]byte("<html><body>Please log in</body></html>"))
			return
		}
		_, _ = w.Write(archive)
	}))
	t.Cleanup(srv.Close)
	f := newChartFetcher(10*time.Second, "")
	src := chartSource{kind: sourceURL, ref: srv.URL + "/x-0.1.0.tgz"}

	_, _, err := f.fetch(src, fetchAuth{})
	require.Error(t, err, "an HTML page is not a chart")
	ch, data, err := f.fetch(src, fetchAuth{})
	require.NoError(t, err, "the retry downloads again instead of reading the page from the cache")
	assert.Equal(t, "x", ch.Name())
	assert.Equal(t, archive, data)
	_, _, err = f.fetch(src, fetchAuth{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), downloads.Load(), "the archive that loaded is cached")
}

func TestArchiveCacheIsBoundedByBytes(t *testing.T) {
	c := newArchiveCache(10)
	steps := []struct {
		name     string
		key      string
		size     int
		wantKeys []string
	}{
		{name: "an archive within the bound is kept", key: "a", size: 4, wantKeys: []string{"a"}},
		{name: "a second one fits beside it", key: "b", size: 4, wantKeys: []string{"a", "b"}},
		{name: "a third evicts the oldest to fit", key: "c", size: 4, wantKeys: []string{"b", "c"}},
		{name: "replacing a key counts its new size only", key: "c", size: 6, wantKeys: []string{"b", "c"}},
		{name: "an archive larger than the bound is not kept and evicts nothing", key: "big", size: 11, wantKeys: []string{"b", "c"}},
		{name: "one that needs the whole bound evicts everything else", key: "d", size: 10, wantKeys: []string{"d"}},
	}
	for _, st := range steps {
		c.put(make([]byte, st.size), st.key)
		var got []string
		for _, k := range []string{"a", "b", "c", "big", "d"} {
			if _, ok := c.get(k); ok {
				got = append(got, k)
			}
		}
		assert.Equal(t, st.wantKeys, got, st.name)
		assert.LessOrEqual(t, c.used, c.max, st.name)
	}
}
