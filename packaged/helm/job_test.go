package helm

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestJobEnvFrom(t *testing.T) {
	env, err := JobEnvFrom(envMap(map[string]string{
		"NAME": "traefik", "CHART_NAMESPACE": "kube-system", "CHART": "traefik/traefik", "REPO": "https://charts",
		"VERSION": "1.0.0", "HELM_DRIVER": "configmap", "TARGET_NAMESPACE": "web", "AUTH_PASS_CREDENTIALS": "true",
		"INSECURE_SKIP_TLS_VERIFY": "false", "PLAIN_HTTP": "true", "TIMEOUT": "1m30s", "FAILURE_POLICY": "abort",
		"CONFIG_HASH": "SHA256=AB", "EXPECTED_RELEASE_REVISION": "3",
		"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443",
	}))
	require.NoError(t, err)
	assert.Equal(t, JobEnv{Name: "traefik", ChartNamespace: "kube-system", Chart: "traefik/traefik", Version: "1.0.0",
		Repo: "https://charts", HelmDriver: "configmap", TargetNamespace: "web", AuthPassCredentials: true, PlainHTTP: true,
		Timeout: 90 * time.Second, FailurePolicy: "abort", ConfigHash: "SHA256=AB", ExpectedRevision: 3,
		HasExpectedRevision: true, APIServer: "[fd00::1]:443"}, env)

	env, err = JobEnvFrom(envMap(map[string]string{"NAME": "x", "CHART_NAMESPACE": "ns"}))
	require.NoError(t, err)
	assert.Equal(t, "ns", env.TargetNamespace, "the release goes to the chart's namespace by default")
	assert.False(t, env.HasExpectedRevision)

	_, err = JobEnvFrom(envMap(map[string]string{"PLAIN_HTTP": "yes please", "TIMEOUT": "soon", "FAILURE_POLICY": "pray",
		"EXPECTED_RELEASE_REVISION": "-1"}))
	for _, want := range []string{"NAME is empty", "CHART_NAMESPACE is empty", `PLAIN_HTTP="yes please"`, `TIMEOUT="soon"`,
		`FAILURE_POLICY="pray"`, `EXPECTED_RELEASE_REVISION="-1"`} {
		assert.ErrorContains(t, err, want, "every bad value is named at once")
	}
}

func TestParseJobArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    JobArgs
		wantErr string
	}{
		{"delete", []string{"delete"}, JobArgs{Delete: true}, ""},
		{"install, nothing else", []string{"install"}, JobArgs{}, ""},
		{"install with every flag, set in order", []string{"install", "--namespace", "web", "--create-namespace", "--take-ownership",
			"--version", "1.2", "--set", "a=1", "--set-string", `b=x\,y`},
			JobArgs{Namespace: "web", CreateNamespace: true, TakeOwnership: true, Version: "1.2",
				Set: []helmchart.SetArg{{Typed: true, KeyValue: "a=1"}, {KeyValue: `b=x\,y`}}}, ""},
		{"no command", nil, JobArgs{}, "no command"},
		{"an unknown command", []string{"upgrade"}, JobArgs{}, `unknown command "upgrade"`},
		{"delete with arguments", []string{"delete", "x"}, JobArgs{}, "delete takes no arguments"},
		{"a flag without its value", []string{"install", "--version"}, JobArgs{}, "--version needs a value"},
		{"an unknown flag", []string{"install", "--wait"}, JobArgs{}, `unknown install flag "--wait"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJobArgs(tt.args)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// The job's arguments are what package helmjob writes: each set entry parses back to itself.
func TestParseJobArgsReadsSetArgFor(t *testing.T) {
	arg := helmchart.SetArgFor("k", intstr.FromString("a,b"))
	got, err := ParseJobArgs([]string{"install", arg.Flag(), arg.KeyValue})
	require.NoError(t, err)
	assert.Equal(t, []helmchart.SetArg{arg}, got.Set)
}

func TestJobReleaseLabel(t *testing.T) {
	hex := "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
	got := jobReleaseLabel("SHA256=" + hex)
	assert.Len(t, got, 63, "a label value has at most 63 characters")
	assert.Equal(t, "0123456789abcdef", got[:16])
	assert.Empty(t, jobReleaseLabel(""))
}

func TestJobValuesFilesInNameOrder(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"values-1-000-HelmChartConfig-ValuesContent.yaml": "a: config\n",
		"values-0-002-HelmChart-ValuesSecret.yaml":        "a: secret\nb: secret\n",
		"values-0-000-HelmChart-ValuesContent.yaml":       "a: chart\nb: chart\nc: chart\n",
		"ca-file.pem": "not values",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	docs, err := jobValuesFiles(dir)
	require.NoError(t, err)
	vals, err := mergeDocs(docs, []helmchart.SetArg{{KeyValue: "c=set"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": "config", "b": "secret", "c": "set"}, vals)
}

func TestJobFetchAuthReadsTheJobsFiles(t *testing.T) {
	paths := JobPaths{Config: t.TempDir(), Auth: t.TempDir(), CAFiles: t.TempDir(), DockerConfig: filepath.Join(t.TempDir(), "config.json"),
		ServiceAccountCA: filepath.Join(t.TempDir(), "ca.crt")}
	write := func(path, content string) { require.NoError(t, os.WriteFile(path, []byte(content), 0o600)) }
	write(filepath.Join(paths.Config, "ca-file.pem"), "REPO-CA\n")
	write(filepath.Join(paths.CAFiles, "b.pem"), "CM-B")
	write(filepath.Join(paths.CAFiles, "a.pem"), "CM-A\n")
	require.NoError(t, os.Mkdir(filepath.Join(paths.CAFiles, "..data"), 0o700))
	write(paths.ServiceAccountCA, "CLUSTER-CA\n")
	write(filepath.Join(paths.Auth, "username"), "u")
	write(filepath.Join(paths.Auth, "password"), "p")
	write(paths.DockerConfig, `{"auths":{"registry.local":{"username":"du","password":"dp"}}}`)

	hc := &helmchart.HelmChart{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	hc.Spec.PlainHTTP = true
	a, err := jobFetchAuth(hc, chartSource{kind: sourceURL}, JobEnv{Chart: "https://%{KUBERNETES_API}%/static/x.tgz"}, paths)
	require.NoError(t, err)
	assert.Equal(t, "REPO-CA\nCM-A\nCM-B\nCLUSTER-CA\n", string(a.caPEM), "repoCA, the ConfigMap's files in name order, the cluster's CA")
	assert.Equal(t, "u", a.username)
	assert.Equal(t, "p", a.password)
	assert.True(t, a.plainHTTP)

	require.NoError(t, os.Remove(filepath.Join(paths.Auth, "password")))
	a, err = jobFetchAuth(hc, chartSource{kind: sourceOCI, ref: "oci://registry.local/charts/x"}, JobEnv{Chart: "oci://registry.local/charts/x"}, paths)
	require.NoError(t, err)
	assert.Equal(t, "du", a.username, "OCI without an authSecret password reads the Docker config")
	assert.Equal(t, "dp", a.password)
	assert.Equal(t, "REPO-CA\nCM-A\nCM-B\n", string(a.caPEM), "the cluster's CA only for a chart the API server serves")

	none, err := jobFetchAuth(hc, chartSource{kind: sourceURL}, JobEnv{Chart: "https://charts/x.tgz"},
		JobPaths{Config: t.TempDir(), Auth: "/nonexistent", CAFiles: "/nonexistent", DockerConfig: "/nonexistent"})
	require.NoError(t, err, "missing files are missing credentials")
	assert.Empty(t, none.caPEM, "no CA: the system's roots")
}

func TestJobHelmChart(t *testing.T) {
	chartDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(chartDir, "x.tgz.base64"), []byte(base64.StdEncoding.EncodeToString([]byte("tgz"))+"\n"), 0o600))
	env := JobEnv{Name: "x", ChartNamespace: "kube-system", TargetNamespace: "kube-system", Chart: "x/traefik", Repo: "https://charts",
		Timeout: time.Minute, APIServer: "10.43.0.1:443"}
	hc, err := jobHelmChart(env, JobArgs{Namespace: "web", Version: "2.0", CreateNamespace: true}, JobPaths{Chart: chartDir})
	require.NoError(t, err)
	assert.Equal(t, "traefik", hc.Spec.Chart, "the repository's chart without the name it was added under")
	assert.Equal(t, "web", hc.TargetNamespace())
	assert.Equal(t, "2.0", hc.Spec.Version)
	assert.True(t, hc.Spec.CreateNamespace)
	assert.Equal(t, "dGd6", hc.Spec.ChartContent)
	assert.Equal(t, time.Minute, hc.Spec.Timeout.Duration)

	env.Repo, env.Chart = "", "https://%{KUBERNETES_API}%/static/charts/x.tgz"
	hc, err = jobHelmChart(env, JobArgs{}, JobPaths{Chart: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, "https://10.43.0.1:443/static/charts/x.tgz", hc.Spec.Chart)
	assert.Empty(t, hc.Spec.ChartContent)

	env.APIServer = ""
	_, err = jobHelmChart(env, JobArgs{}, JobPaths{Chart: t.TempDir()})
	require.ErrorContains(t, err, "KUBERNETES_SERVICE_HOST is not set")
}
