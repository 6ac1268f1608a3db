package helmjob

import (
	"context"
	"fmt"
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
	"k8s.io/client-go/tools/record"

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

func startControllerEnv(t *testing.T) *controllerEnv {
	t.Helper()
	c := cluster.Get(t)
	ns := c.Namespace(t)
	c.AddNodes(t, testcluster.Node(testcluster.UniqueName("helmjob"), testcluster.Labels(map[string]string{corev1.LabelOSStable: "linux"})))
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	recorder := record.NewFakeRecorder(100)
	ctrl, err := New(c.Client, Options{Config: c.Config, Namespace: ns, EventRecorder: recorder})
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

func (e *controllerEnv) createChart(t *testing.T, name string, spec map[string]any) {
	t.Helper()
	_, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Create(t.Context(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
		"metadata": map[string]any{"name": name, "namespace": e.ns}, "spec": spec,
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func (e *controllerEnv) chart(t *testing.T, name string) *helmchart.HelmChart {
	t.Helper()
	u, err := e.dyn.Resource(helmchart.Resource).Namespace(e.ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	hc := &helmchart.HelmChart{}
	require.NoError(t, helmchart.Decode(u, hc))
	return hc
}

// eventually polls cond until it holds, failing with what it last said.
func (e *controllerEnv) eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		ok, said := cond()
		last = said
		return ok, nil
	})
	require.NoError(t, err, "%s; last seen: %s", what, last)
}

func (e *controllerEnv) job(t *testing.T, name string) *batchv1.Job {
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

	failed := func(name string) (bool, string) {
		for _, c := range e.chart(t, name).Status.Conditions {
			if c.Type == helmchart.ConditionFailed && c.Status == corev1.ConditionTrue {
				return true, c.Reason + ": " + c.Message
			}
		}
		return false, fmt.Sprintf("%+v", e.chart(t, name).Status)
	}
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
