package helm

import (
	"encoding/base64"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

// jobPod is the files of one job's pod: values, inline chart, credentials.
type jobPod struct {
	paths JobPaths
}

func newJobPod(t *testing.T) *jobPod {
	t.Helper()
	root := t.TempDir()
	p := &jobPod{paths: JobPaths{Config: filepath.Join(root, "config"), Chart: filepath.Join(root, "chart"),
		Auth: filepath.Join(root, "auth"), CAFiles: filepath.Join(root, "ca-files"),
		DockerConfig: filepath.Join(root, "docker", "config.json"), ServiceAccountCA: filepath.Join(root, "ca.crt")}}
	for _, dir := range []string{p.paths.Config, p.paths.Chart, p.paths.Auth} {
		require.NoError(t, os.MkdirAll(dir, 0o700))
	}
	return p
}

func (p *jobPod) write(t *testing.T, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}

// configMapData is the data of ConfigMap name in ns, nil when there is none.
func configMapData(t *testing.T, c *testcluster.Cluster, ns, name string) map[string]string {
	t.Helper()
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(t, err)
	return cm.Data
}

func TestRunJobInstallsUpgradesAndUninstalls(t *testing.T) {
	c := cluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	pod := newJobPod(t)
	pod.write(t, pod.paths.Chart, "x.tgz.base64", base64.StdEncoding.EncodeToString(tinyChart(t)))
	pod.write(t, pod.paths.Config, "values-0-000-HelmChart-ValuesContent.yaml", "greeting: chart\nignored: chart\n")
	pod.write(t, pod.paths.Config, "values-1-000-HelmChartConfig-ValuesContent.yaml", "greeting: config\n")
	env := JobEnv{Name: "x", ChartNamespace: ns, TargetNamespace: ns, ConfigHash: "SHA256=AAAA", HasExpectedRevision: true}
	install := JobArgs{Set: []helmchart.SetArg{{KeyValue: "ignored=set"}}}

	res, err := RunJob(ctx, c.Config, env, install, pod.paths)
	require.NoError(t, err)
	assert.Equal(t, JobResult{Action: "install", Namespace: ns, Release: "x"}, res)
	assert.Equal(t, map[string]string{"greeting": "config", "ignored": "set"}, configMapData(t, c, ns, "x-x"),
		"the values files in name order, then set")
	revs, err := revisionsIn(ctx, c, ns, "x")
	require.NoError(t, err)
	assert.Equal(t, []string{"1/deployed"}, revs)
	secret, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "sh.helm.release.v1.x.v1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "aaaa", secret.Labels[helmchart.LabelConfigHash], "the release carries the job's hash")

	env.ExpectedRevision = 1
	res, err = RunJob(ctx, c.Config, env, install, pod.paths)
	require.NoError(t, err)
	assert.Equal(t, "none", res.Action, "the same hash again changes nothing")

	pod.write(t, pod.paths.Config, "values-1-000-HelmChartConfig-ValuesContent.yaml", "greeting: changed\n")
	env.ConfigHash = "SHA256=BBBB"
	res, err = RunJob(ctx, c.Config, env, install, pod.paths)
	require.NoError(t, err)
	assert.Equal(t, "upgrade", res.Action)
	assert.Equal(t, "changed", configMapData(t, c, ns, "x-x")["greeting"])

	env.ConfigHash = "SHA256=CCCC"
	res, err = RunJob(ctx, c.Config, env, install, pod.paths)
	require.NoError(t, err)
	assert.Equal(t, "skip", res.Action, "the release is at revision 2, not the 1 the job was written for")
	revs, err = revisionsIn(ctx, c, ns, "x")
	require.NoError(t, err)
	assert.Equal(t, []string{"1/superseded", "2/deployed"}, revs)

	env.ExpectedRevision = 1
	res, err = RunJob(ctx, c.Config, env, JobArgs{Delete: true}, pod.paths)
	require.NoError(t, err)
	assert.Equal(t, "uninstall", res.Action, "a deleted chart's release goes, whatever its revision")
	assert.Nil(t, configMapData(t, c, ns, "x-x"), "the release's objects are gone")
	revs, err = revisionsIn(ctx, c, ns, "x")
	require.NoError(t, err)
	assert.Empty(t, revs)

	env.ExpectedRevision = 0
	res, err = RunJob(ctx, c.Config, env, JobArgs{Delete: true}, pod.paths)
	require.NoError(t, err, "deleting a release that is gone succeeds")
	assert.Equal(t, "uninstall", res.Action)
}

func TestRunJobFromARepositoryWithBasicAuth(t *testing.T) {
	c := cluster.Get(t)
	ns := c.Namespace(t)
	charts := newChartRepo(t, "user", "secret", (*httptest.Server).Start)
	pod := newJobPod(t)
	pod.write(t, pod.paths.Auth, "username", "user")
	pod.write(t, pod.paths.Auth, "password", "secret")
	env := JobEnv{Name: "fromrepo", ChartNamespace: ns, TargetNamespace: ns, Chart: "fromrepo/x", Repo: charts.url, ConfigHash: "SHA256=01"}

	res, err := RunJob(testContext(t), c.Config, env, JobArgs{Version: "0.1.0"}, pod.paths)
	require.NoError(t, err)
	assert.Equal(t, "install", res.Action)
	assert.Equal(t, "hello", configMapData(t, c, ns, "fromrepo-x")["greeting"])

	require.NoError(t, os.Remove(filepath.Join(pod.paths.Auth, "password")))
	env.ConfigHash = "SHA256=02"
	_, err = RunJob(testContext(t), c.Config, env, JobArgs{Version: "0.1.0"}, pod.paths)
	require.ErrorContains(t, err, "401", "without the password the repository refuses")
}

func TestRunJobFailurePolicies(t *testing.T) {
	c := cluster.Get(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	broken, err := helmchart.Archive(fstest.MapFS{
		"b/Chart.yaml":               {Data: []byte("apiVersion: v2\nname: b\nversion: 0.1.0\n")},
		"b/templates/configmap.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\n")},
	}, "b")
	require.NoError(t, err)
	pod := newJobPod(t)
	pod.write(t, pod.paths.Chart, "b.tgz.base64", base64.StdEncoding.EncodeToString(broken))
	env := JobEnv{Name: "b", ChartNamespace: ns, TargetNamespace: ns, ConfigHash: "SHA256=01"}

	_, err = RunJob(ctx, c.Config, env, JobArgs{}, pod.paths)
	require.Error(t, err, "the API server refuses the chart's ConfigMap")
	revs, err := revisionsIn(ctx, c, ns, "b")
	require.NoError(t, err)
	require.Equal(t, []string{"1/failed"}, revs)

	env.FailurePolicy = helmchart.FailurePolicyAbort
	res, err := RunJob(ctx, c.Config, env, JobArgs{}, pod.paths)
	require.ErrorContains(t, err, "failure policy is abort")
	assert.Equal(t, "abort", res.Action)

	env.FailurePolicy = helmchart.FailurePolicyReinstall
	res, err = RunJob(ctx, c.Config, env, JobArgs{}, pod.paths)
	require.Error(t, err, "reinstalled, and refused again")
	assert.Equal(t, "reinstall", res.Action)
	revs, err = revisionsIn(ctx, c, ns, "b")
	require.NoError(t, err)
	assert.Equal(t, []string{"1/failed"}, revs, "the failed release was uninstalled and installed again")
}

func TestRunJobRefusesHelmV2(t *testing.T) {
	_, err := RunJob(testContext(t), nil, JobEnv{Name: "x", ChartNamespace: "ns", HelmVersion: "v2"}, JobArgs{}, JobPaths{})
	require.ErrorIs(t, err, ErrHelmV2)
}
