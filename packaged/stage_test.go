package packaged

import (
	"encoding/base64"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func TestStageSkipped(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		skips map[string]bool
		want  bool
	}{
		{name: "no skips stage everything", file: "coredns.yaml", want: false},
		{name: "the file name skips it", file: "coredns.yaml", skips: map[string]bool{"coredns.yaml": true}, want: true},
		{name: "the name without extension skips it", file: "coredns.yaml", skips: map[string]bool{"coredns": true}, want: true},
		{name: "another name does not skip it", file: "coredns.yaml", skips: map[string]bool{"traefik": true}, want: false},
		{name: "a folder skips the files inside", file: "metrics-server/deployment.yaml", skips: map[string]bool{"metrics-server": true}, want: true},
		{name: "a nested folder prefix skips the files inside", file: "a/b/c.yaml", skips: map[string]bool{"a/b": true}, want: true},
		{name: "a file in a folder is skipped by its relative path without extension", file: "metrics-server/deployment.yaml", skips: map[string]bool{"metrics-server/deployment": true}, want: true},
		{name: "a bare basename does not reach into a folder", file: "metrics-server/deployment.yaml", skips: map[string]bool{"deployment": true}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, stageSkipped(tt.file, tt.skips))
		})
	}
}

func TestStageWritesEveryPackagedManifest(t *testing.T) {
	dir := t.TempDir()
	vars := Vars{ClusterDNS: []netip.Addr{netip.MustParseAddr("10.0.0.10")}, ClusterDomain: "example.org", SystemDefaultRegistry: "reg.example"}
	require.NoError(t, Stage(dir, vars, nil))

	for _, name := range []string{"coredns.yaml", "traefik.yaml"} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s: K3s writes manifests 0600", name)
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.NotContains(t, string(data), "%{", "%s: every template key is replaced", name)
		objs, err := parseManifest(data)
		require.NoError(t, err, "%s parses", name)
		assert.NotEmpty(t, objs)
	}
	coredns, err := os.ReadFile(filepath.Join(dir, "coredns.yaml"))
	require.NoError(t, err)
	for _, want := range []string{
		"clusterIP: 10.0.0.10", "clusterIPs: [10.0.0.10]", "ipFamilyPolicy: SingleStack",
		"kubernetes example.org in-addr.arpa", "image: \"reg.example/rancher/mirrored-coredns-coredns:",
		"import /etc/coredns/custom/*.override", "import /etc/coredns/custom/*.server",
	} {
		assert.Contains(t, string(coredns), want)
	}
	traefik, err := os.ReadFile(filepath.Join(dir, "traefik.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(traefik), `global.systemDefaultRegistry: "reg.example"`)
}

func TestStageOverwritesEditsAndKeepsIdenticalFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Stage(dir, Vars{}, nil))
	p := filepath.Join(dir, "coredns.yaml")
	want, err := os.ReadFile(p)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(p, []byte("edited: true\n"), 0o644))
	require.NoError(t, os.Chmod(p, 0o644))
	require.NoError(t, Stage(dir, Vars{}, nil))
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "the next start undoes edits, as K3s rewrites its packaged manifests at every start")
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	before := fi.ModTime()
	require.NoError(t, Stage(dir, Vars{}, nil))
	fi, err = os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, before, fi.ModTime(), "an identical file is not rewritten, so the deploy controller is not woken")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary file is left behind")
}

func TestStageHonoursSkipsAndNeverDeletes(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Stage(dir, Vars{}, map[string]bool{"traefik": true}))
	assert.FileExists(t, filepath.Join(dir, "coredns.yaml"))
	assert.NoFileExists(t, filepath.Join(dir, "traefik.yaml"))

	require.NoError(t, Stage(dir, Vars{}, nil))
	require.NoError(t, Stage(dir, Vars{}, map[string]bool{"coredns.yaml": true}))
	assert.FileExists(t, filepath.Join(dir, "coredns.yaml"), "Stage never deletes; the deploy controller's disable path does, as for K3s's --disable")
}

func TestStageRejectsInvalidVars(t *testing.T) {
	dir := t.TempDir()
	v4 := netip.MustParseAddr("10.0.0.10")
	assert.Error(t, Stage(dir, Vars{ClusterDNS: []netip.Addr{v4, v4}}, nil))
}

func TestStagedTraefikCarriesBothChartsInline(t *testing.T) {
	files, err := renderManifests(Vars{}, nil)
	require.NoError(t, err)
	var traefik []byte
	for _, f := range files {
		if f.name == "traefik.yaml" {
			traefik = f.data
		}
	}
	require.NotNil(t, traefik)
	objs, err := parseManifest(traefik)
	require.NoError(t, err)
	require.Len(t, objs, 2)
	wantChart := map[string]string{"traefik-crd": "traefik-crd/Chart.yaml", "traefik": "traefik/Chart.yaml"}
	for _, obj := range objs {
		assert.Equal(t, "helm.cattle.io/v1, Kind=HelmChart", obj.GroupVersionKind().String())
		assert.Equal(t, "kube-system", obj.GetNamespace())
		content, _, _ := unstructuredString(obj.Object, "spec", "chartContent")
		tgz, err := base64.StdEncoding.DecodeString(content)
		require.NoError(t, err, "%s: chartContent is base64", obj.GetName())
		names := archiveNames(t, tgz)
		assert.Contains(t, names, wantChart[obj.GetName()], "%s: chartContent holds the chart", obj.GetName())
		if obj.GetName() == "traefik" {
			assert.Contains(t, names, "traefik/templates/_helpers.tpl", "partials (underscore files) are embedded too")
		}
	}
	var values map[string]any
	vc, _, _ := unstructuredString(objs[1].Object, "spec", "valuesContent")
	require.NoError(t, yaml.Unmarshal([]byte(vc), &values))
	assert.Contains(t, values, "providers")
	assert.True(t, strings.HasPrefix(objs[1].GetName(), "traefik"))
}
