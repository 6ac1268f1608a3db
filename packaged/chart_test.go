package packaged

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	"github.com/k3snet/k3snet/packaged/helmchart"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// unstructuredString is unstructured.NestedString, shortened for tests.
func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	return unstructured.NestedString(obj, fields...)
}

// archiveNames lists the entries of a .tgz.
func archiveNames(t *testing.T, tgz []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		names = append(names, hdr.Name)
	}
	return names
}

func TestChartArchiveIsDeterministicAndHelmShaped(t *testing.T) {
	fsys := fstest.MapFS{
		"charts/demo/Chart.yaml":       {Data: []byte("name: demo\n"), ModTime: timeNow()},
		"charts/demo/templates/a.yaml": {Data: []byte("a: 1\n")},
		"charts/demo/templates/_h.tpl": {Data: []byte("{{/* h */}}\n")},
		"charts/other/Chart.yaml":      {Data: []byte("name: other\n")},
	}
	first, err := helmchart.Archive(fsys, "charts/demo")
	require.NoError(t, err)
	fsys["charts/demo/Chart.yaml"].ModTime = timeNow().Add(1e9)
	second, err := helmchart.Archive(fsys, "charts/demo")
	require.NoError(t, err)
	assert.Equal(t, first, second, "bytes depend on the sources only")
	assert.Equal(t, []string{"demo/Chart.yaml", "demo/templates/_h.tpl", "demo/templates/a.yaml"}, archiveNames(t, first))
}

// TestEmbeddedChartsParse checks what can be checked without Helm: Chart.yaml and
// values.yaml are YAML, every template parses as a Go template with Helm's function names,
// and the Service template exposes web and websecure.
func TestEmbeddedChartsParse(t *testing.T) {
	stub := func(...any) any { return "" }
	funcs := template.FuncMap{}
	for _, name := range []string{"include", "nindent", "toYaml", "default", "quote", "lower", "kindIs", "list",
		"upper", "trim", "replace", "join", "hasPrefix", "hasKey", "toString", "fromYaml", "dict", "set", "omit", "mergeOverwrite", "fail"} {
		funcs[name] = stub
	}
	for _, chart := range []string{"charts/traefik", "charts/traefik-crd"} {
		err := fs.WalkDir(chartsFS, chart, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(chartsFS, p)
			require.NoError(t, err)
			switch {
			case strings.HasPrefix(p, chart+"/templates/"):
				_, err := template.New(p).Funcs(funcs).Parse(string(data))
				assert.NoError(t, err, "%s parses as a template", p)
			default:
				var v map[string]any
				assert.NoError(t, yaml.Unmarshal(data, &v), "%s is YAML", p)
			}
			return nil
		})
		require.NoError(t, err)
	}
	values, err := fs.ReadFile(chartsFS, "charts/traefik/values.yaml")
	require.NoError(t, err)
	var v struct {
		Ports map[string]struct {
			Port        int  `json:"port"`
			ExposedPort int  `json:"exposedPort"`
			Expose      bool `json:"expose"`
		} `json:"ports"`
		Service struct {
			Type string `json:"type"`
		} `json:"service"`
	}
	require.NoError(t, yaml.Unmarshal(values, &v))
	assert.Equal(t, "LoadBalancer", v.Service.Type)
	assert.Equal(t, 80, v.Ports["web"].ExposedPort)
	assert.Equal(t, 443, v.Ports["websecure"].ExposedPort)
	assert.True(t, v.Ports["web"].Expose && v.Ports["websecure"].Expose)
}

// timeNow is a fixed instant for fixtures.
func timeNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
