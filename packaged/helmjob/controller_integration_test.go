package helmjob

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/metricsreg"
	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

// controllerEnv is a Controller in a namespace of its own, with a kwok node its jobs' pods run on:
// kwok completes a Job's pod, so a job completes without running Helm.
type controllerEnv struct {
	c        *testcluster.Cluster
	ns       string
	dyn      dynamic.Interface
	recorder *record.FakeRecorder
}

func startControllerEnv(t testing.TB) *controllerEnv {
	t.Helper()
	return startControllerEnvWith(t, Options{})
}

// startControllerEnvWith starts the Controller with opts, its namespace, recorder and
// Config filled in.
func startControllerEnvWith(t testing.TB, opts Options) *controllerEnv {
	t.Helper()
	c := cluster.Get(t)
	ns := c.Namespace(t)
	c.AddNodes(t, testcluster.Node(testcluster.UniqueName("helmjob"), testcluster.Labels(map[string]string{corev1.LabelOSStable: "linux"})))
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	recorder := record.NewFakeRecorder(100)
	opts.Config, opts.Namespace, opts.EventRecorder = c.Config, ns, recorder
	ctrl, err := New(c.Client, opts)
	require.NoError(t, err)
	require.NoError(t, ctrl.Start(testContext(t), nil))
	e := &controllerEnv{c: c, ns: ns, dyn: dyn, recorder: recorder}
	t.Cleanup(func() {
		res := dyn.Resource(helmchart.Resource).Namespace(ns)
		list, err := res.List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return
		}
		for _, hc := range list.Items {
			_, _ = res.Patch(context.Background(), hc.GetName(), "application/merge-patch+json",
				[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		}
	})
	return e
}

func (e *controllerEnv) createChart(t testing.TB, name string, spec map[string]any) {
	t.Helper()
	_, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Create(t.Context(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
		"metadata": map[string]any{"name": name, "namespace": e.ns}, "spec": spec,
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func (e *controllerEnv) chart(t testing.TB, name string) *helmchart.HelmChart {
	t.Helper()
	u, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	hc := &helmchart.HelmChart{}
	require.NoError(t, helmchart.Decode(u, hc))
	return hc
}

// failed reports whether the chart's Failed condition is true, with its reason and message.
func (e *controllerEnv) failed(t *testing.T, name string) (bool, string) {
	hc := e.chart(t, name)
	for _, c := range hc.Status.Conditions {
		if c.Type == helmchart.ConditionFailed && c.Status == corev1.ConditionTrue {
			return true, c.Reason + ": " + c.Message
		}
	}
	return false, fmt.Sprintf("%+v", hc.Status)
}

// eventually polls cond until it holds, failing with what it last said.
func (e *controllerEnv) eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		ok, said := cond()
		last = said
		return ok, nil
	})
	require.NoError(t, err, "%s; last seen: %s", what, last)
}

// countedController is a second Controller over e's namespace, not started, whose API
// requests are counted: it stands for e's controller restarted.
type countedController struct {
	ctrl     *Controller
	requests *testcluster.WriteCounter
	reg      metrics.KubeRegistry
}

func (e *controllerEnv) countedController(tb testing.TB) countedController {
	tb.Helper()
	counted := countedController{requests: &testcluster.WriteCounter{}, reg: metrics.NewKubeRegistry()}
	cfg := rest.CopyConfig(e.c.Config)
	cfg.Wrap(counted.requests.Wrap)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(tb, err)
	counted.ctrl, err = New(client, Options{Config: cfg, Namespace: e.ns, EventRecorder: record.NewFakeRecorder(100), MetricsRegistry: counted.reg})
	require.NoError(tb, err)
	return counted
}

// successfulSyncs is what packaged_helmchart_syncs_total{result="success"} has counted on reg.
func successfulSyncs(tb testing.TB, reg metrics.KubeRegistry) float64 {
	tb.Helper()
	n, err := metricsreg.ResultCount(reg, "packaged_helmchart_syncs_total", "success")
	require.NoError(tb, err)
	return n
}

func (e *controllerEnv) job(t testing.TB, name string) *batchv1.Job {
	job, err := e.c.Client.BatchV1().Jobs(e.ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(t, err)
	return job
}

func TestControllerRunsAChartInJobs(t *testing.T) {
	e := startControllerEnv(t)
	// Release records as Helm labels them: the job is told the newest revision it will find.
	for _, v := range []string{"2", "3"} {
		_, err := e.c.Client.CoreV1().Secrets(e.ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Name: "sh.helm.release.v1.web.v" + v, Labels: map[string]string{"owner": "helm", "name": "web", "version": v}},
			Type: "helm.sh/release.v1"}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	e.createChart(t, "web", map[string]any{"chartContent": "dGd6", "valuesContent": "greeting: hi\n"})

	var first *batchv1.Job
	e.eventually(t, "the install job runs to completion and the status says so", func() (bool, string) {
		first = e.job(t, "helm-install-web")
		hc := e.chart(t, "web")
		return first != nil && jobCondition(first, batchv1.JobComplete) && hc.Status.JobName == "helm-install-web",
			fmt.Sprintf("job %v, status %+v", first != nil, hc.Status)
	})
	hc := e.chart(t, "web")
	assert.Equal(t, helmchart.DefaultManagedBy, hc.Annotations[helmchart.AnnotationManagedBy], "claimed")
	assert.Contains(t, hc.Finalizers, helmchart.Finalizer)
	assert.Contains(t, hc.Status.Conditions, helmchart.HelmChartCondition{Type: "JobCreated", Status: "True", Reason: "JobCreated", Message: "Job created"})
	assert.Contains(t, hc.Status.Conditions, helmchart.HelmChartCondition{Type: "Failed", Status: "False"})
	assert.Equal(t, []metav1.OwnerReference{{APIVersion: "helm.cattle.io/v1", Kind: "HelmChart", Name: "web", UID: hc.UID}}, first.OwnerReferences)
	assert.Contains(t, first.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "EXPECTED_RELEASE_REVISION", Value: "3"})

	ctx := t.Context()
	sa, err := e.c.Client.CoreV1().ServiceAccounts(e.ns).Get(ctx, "helm-web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, hc.UID, sa.OwnerReferences[0].UID)
	crb, err := e.c.Client.RbacV1().ClusterRoleBindings().Get(ctx, "helm-"+e.ns+"-web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "cluster-admin", crb.RoleRef.Name)
	values, err := e.c.Client.CoreV1().Secrets(e.ns).Get(ctx, "chart-values-web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "greeting: hi\n", string(values.Data["HelmChartValuesContent"]))
	content, err := e.c.Client.CoreV1().ConfigMaps(e.ns).Get(ctx, "chart-content-web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "dGd6", content.Data["web.tgz.base64"])
	assert.Contains(t, <-e.recorder.Events, "Normal ApplyJob Applying HelmChart using Job "+e.ns+"/helm-install-web")

	// A HelmChartConfig's values change the hash: the job is replaced.
	_, err = e.dyn.Resource(helmchart.ConfigResource).Namespace(e.ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
		"metadata": map[string]any{"name": "web", "namespace": e.ns}, "spec": map[string]any{"valuesContent": "greeting: config\n"},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.eventually(t, "a new job for the new values", func() (bool, string) {
		job := e.job(t, "helm-install-web")
		if job == nil {
			return false, "no job"
		}
		return job.UID != first.UID && job.Annotations[helmchart.LabelConfigHash] != first.Annotations[helmchart.LabelConfigHash], string(job.UID)
	})
	values, err = e.c.Client.CoreV1().Secrets(e.ns).Get(ctx, "chart-values-web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "greeting: config\n", string(values.Data["HelmChartConfigValuesContent"]))

	// Deleted: the delete job runs, then everything the chart had goes, the chart too.
	require.NoError(t, e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Delete(ctx, "web", metav1.DeleteOptions{}))
	e.eventually(t, "the HelmChart is gone once its delete job completed", func() (bool, string) {
		_, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	_, err = e.c.Client.RbacV1().ClusterRoleBindings().Get(ctx, "helm-"+e.ns+"-web", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the ClusterRoleBinding is deleted: %v", err)
	for _, name := range []string{"helm-install-web", "helm-delete-web"} {
		e.eventually(t, name+" is deleted", func() (bool, string) { return e.job(t, name) == nil, "still there" })
	}
	var reasons []string
	for len(e.recorder.Events) > 0 {
		reasons = append(reasons, <-e.recorder.Events)
	}
	assert.True(t, slices.ContainsFunc(reasons, func(r string) bool {
		return strings.HasPrefix(r, "Normal RemoveJob Applying HelmChart using Job "+e.ns+"/helm-delete-web")
	}), "events %q", reasons)
}

func TestControllerReportsChartsItCannotRun(t *testing.T) {
	e := startControllerEnv(t)
	e.createChart(t, "old", map[string]any{"chartContent": "dGd6", "helmVersion": "v2"})
	e.createChart(t, "waits", map[string]any{"chartContent": "dGd6",
		"valuesSecrets": []any{map[string]any{"name": "later", "keys": []any{"values.yaml"}}}})
	e.createChart(t, "theirs", map[string]any{"chartContent": "dGd6"})
	_, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Patch(t.Context(), "theirs", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"helmcharts.cattle.io/managed-by":"someone-else"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	failed := func(name string) (bool, string) { return e.failed(t, name) }
	e.eventually(t, "helm v2 is refused", func() (bool, string) { return failed("old") })
	_, msg := failed("old")
	assert.Equal(t, `UnsupportedVersion: Unsupported version "v2"`, msg)
	e.eventually(t, "a chart waits for its values Secret", func() (bool, string) { return failed("waits") })
	_, msg = failed("waits")
	assert.Contains(t, msg, "InvalidChart: values Secret not found: "+e.ns+"/later")
	assert.Nil(t, e.job(t, "helm-install-waits"))

	_, err = e.c.Client.CoreV1().Secrets(e.ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "later"}, Data: map[string][]byte{"values.yaml": []byte("a: 1\n")}}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.eventually(t, "the Secret's arrival runs the chart", func() (bool, string) {
		ok, msg := failed("waits")
		return !ok && e.job(t, "helm-install-waits") != nil, msg
	})

	assert.Nil(t, e.job(t, "helm-install-theirs"), "a chart another controller manages is left alone")
	assert.NotContains(t, e.chart(t, "theirs").Finalizers, helmchart.Finalizer)
}

func TestControllerUninstallsAChartWhoseValuesSecretIsGone(t *testing.T) {
	e := startControllerEnv(t)
	ctx := t.Context()
	_, err := e.c.Client.CoreV1().Secrets(e.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "vals"}, Data: map[string][]byte{"values.yaml": []byte("a: 1\n")}}, metav1.CreateOptions{})
	require.NoError(t, err)
	e.createChart(t, "web", map[string]any{"chartContent": "dGd6",
		"valuesSecrets": []any{map[string]any{"name": "vals", "keys": []any{"values.yaml"}}}})
	e.eventually(t, "the install job completes", func() (bool, string) {
		job := e.job(t, "helm-install-web")
		return job != nil && jobCondition(job, batchv1.JobComplete), "not yet"
	})

	require.NoError(t, e.c.Client.CoreV1().Secrets(e.ns).Delete(ctx, "vals", metav1.DeleteOptions{}))
	require.NoError(t, e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Delete(ctx, "web", metav1.DeleteOptions{}))
	e.eventually(t, "the chart is uninstalled and gone without its values Secret", func() (bool, string) {
		_, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// TestControllerHandsAStaticChartToItsJob: a chart https://%{KUBERNETES_API}%/static/<path>
// reaches its job as the file of the static directory, through the content ConfigMap; a file
// not there yet fails the chart until it appears, and a path out of the directory is refused.
func TestControllerHandsAStaticChartToItsJob(t *testing.T) {
	static := t.TempDir()
	e := startControllerEnvWith(t, Options{StaticDir: static})
	e.createChart(t, "web", map[string]any{"chart": "https://%{KUBERNETES_API}%/static/charts/web.tgz"})
	e.createChart(t, "escape", map[string]any{"chart": "https://%{KUBERNETES_API}%/static/../web.tgz"})
	failure := func(name string) (bool, string) { return e.failed(t, name) }
	e.eventually(t, "a static chart not yet in the directory fails", func() (bool, string) { return failure("web") })
	_, msg := failure("web")
	assert.Contains(t, msg, "InvalidChart: reading chart https://%{KUBERNETES_API}%/static/charts/web.tgz from the static directory")
	e.eventually(t, "a path out of the static directory is refused", func() (bool, string) { return failure("escape") })
	_, msg = failure("escape")
	assert.Contains(t, msg, `is not a path inside the static directory`)
	assert.Nil(t, e.job(t, "helm-install-escape"))

	require.NoError(t, os.MkdirAll(filepath.Join(static, "charts"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(static, "charts", "web.tgz"), []byte("archive-1"), 0o644))
	e.eventually(t, "the file's arrival runs the chart, its archive in the content ConfigMap", func() (bool, string) {
		cm, err := e.c.Client.CoreV1().ConfigMaps(e.ns).Get(t.Context(), ContentConfigMapName("web"), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return e.job(t, "helm-install-web") != nil && cm.Data[ContentKey("web")] == base64.StdEncoding.EncodeToString([]byte("archive-1")), fmt.Sprint(cm.Data)
	})
	first := e.job(t, "helm-install-web")
	assert.Contains(t, volumeNames(first), "content", "the job mounts the archive at /chart")

	// A rewritten file is read at the chart's next sync, and replaces the job.
	require.NoError(t, os.WriteFile(filepath.Join(static, "charts", "web.tgz"), []byte("archive-2"), 0o644))
	_, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Patch(t.Context(), "web", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"touched":"1"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.eventually(t, "a new archive replaces the job", func() (bool, string) {
		job := e.job(t, "helm-install-web")
		if job == nil {
			return false, "no job"
		}
		hash := job.Spec.Template.Annotations[helmchart.LabelConfigHash]
		return job.UID != first.UID && hash != first.Spec.Template.Annotations[helmchart.LabelConfigHash], hash
	})
}

func volumeNames(job *batchv1.Job) []string {
	var names []string
	for _, v := range job.Spec.Template.Spec.Volumes {
		names = append(names, v.Name)
	}
	return names
}

// TestControllerRestartWithNothingChangedWritesNothing restarts the controller over charts
// whose jobs have completed: once it has synced each again, it has written nothing (no
// object applied again, no job, no status), and a deleted object of a chart is put back at
// the chart's next sync.
func TestControllerRestartWithNothingChangedWritesNothing(t *testing.T) {
	e := startControllerEnv(t) // the first controller; it runs until the test ends
	e.createChart(t, "inline", map[string]any{"chartContent": "dGd6", "valuesContent": "a: 1\n"})
	e.createChart(t, "remote", map[string]any{"chart": "https://charts.example.com/remote-1.0.0.tgz"})
	for _, name := range []string{"inline", "remote"} {
		e.eventually(t, name+"'s job completes and its status says so", func() (bool, string) {
			job, hc := e.job(t, "helm-install-"+name), e.chart(t, name)
			return job != nil && jobCondition(job, batchv1.JobComplete) && hc.Status.JobName == job.Name, fmt.Sprintf("%+v", hc.Status)
		})
	}

	// A second controller with counted writes stands for the restarted one: the first
	// has nothing left to do, and the second must find the same.
	restarted := e.countedController(t)
	ctx, stop := context.WithCancel(testContext(t))
	defer stop()
	require.NoError(t, restarted.ctrl.Start(ctx, nil))
	e.eventually(t, "the restarted controller syncs both charts", func() (bool, string) {
		n := successfulSyncs(t, restarted.reg)
		return n >= 2, fmt.Sprint(n)
	})
	assert.Empty(t, restarted.requests.Since(0), "API writes of the restart")

	// Someone deletes a chart's values Secret: the chart's next sync puts it back.
	require.NoError(t, e.c.Client.CoreV1().Secrets(e.ns).Delete(t.Context(), "chart-values-inline", metav1.DeleteOptions{}))
	_, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Patch(t.Context(), "inline", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"touched":"1"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.eventually(t, "the values Secret is back", func() (bool, string) {
		_, err := e.c.Client.CoreV1().Secrets(e.ns).Get(t.Context(), "chart-values-inline", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
}

// TestControllerReportsAFailedInstallJobOnce: an install job whose back-off limit is spent
// fails the chart (Failed, reason JobFailed) with one JobFailed Warning, not one per sync.
// The chart is a bootstrap one, whose pod waits for a server node no test node is; the test
// fails that pod as a kubelet would, and kube-controller-manager's Job controller fails the job.
func TestControllerReportsAFailedInstallJobOnce(t *testing.T) {
	reg := metrics.NewKubeRegistry()
	e := startControllerEnvWith(t, Options{Job: JobOptions{APIServerPort: 6443}, MetricsRegistry: reg})
	syncs := func() float64 { return successfulSyncs(t, reg) }
	e.createChart(t, "broken", map[string]any{"chartContent": "dGd6", "bootstrap": true, "backOffLimit": 0})
	var pod *corev1.Pod
	e.eventually(t, "the install job's pod exists", func() (bool, string) {
		pods, err := e.c.Client.CoreV1().Pods(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "job-name=helm-install-broken"})
		require.NoError(t, err)
		if len(pods.Items) == 0 {
			return false, "no pod"
		}
		pod = &pods.Items[0]
		return true, ""
	})
	pod.Status.Phase = corev1.PodFailed
	_, err := e.c.Client.CoreV1().Pods(e.ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.eventually(t, "the chart fails with its job", func() (bool, string) { return e.failed(t, "broken") })
	_, msg := e.failed(t, "broken")
	assert.Equal(t, "JobFailed: Job failed", msg)

	// Another sync of the failed chart says nothing new.
	before := syncs()
	_, err = e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Patch(t.Context(), "broken", "application/merge-patch+json",
		[]byte(`{"metadata":{"annotations":{"touched":"1"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.eventually(t, "the touch syncs the chart again", func() (bool, string) { return syncs() > before, fmt.Sprint(syncs()) })
	var failures []string
	for len(e.recorder.Events) > 0 {
		if ev := <-e.recorder.Events; strings.Contains(ev, ReasonJobFailed) {
			failures = append(failures, ev)
		}
	}
	assert.Equal(t, []string{"Warning JobFailed Job " + e.ns + "/helm-install-broken failed"}, failures)
}
