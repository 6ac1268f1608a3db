package packaged

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/k3snet/k3snet/packaged/helm"
	"github.com/k3snet/k3snet/packaged/helmchart"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/k3snet/k3snet/internal/crdinstall"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// helmChartEvents lists the Events with reason on HelmChart ns/name.
func helmChartEvents(ctx context.Context, c *testcluster.Cluster, ns, name, reason string) ([]corev1.Event, error) {
	events, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.kind": "HelmChart", "involvedObject.name": name, "reason": reason,
	}.String()})
	if err != nil {
		return nil, err
	}
	return events.Items, nil
}

// waitHelmChartEvent waits for an Event with reason on HelmChart ns/name and returns the
// messages of all such Events.
func waitHelmChartEvent(t *testing.T, c *testcluster.Cluster, ns, name, reason string) []string {
	t.Helper()
	var msgs []string
	err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		events, err := helmChartEvents(ctx, c, ns, name, reason)
		msgs = msgs[:0]
		for _, e := range events {
			msgs = append(msgs, e.Type+": "+e.Message)
		}
		return len(msgs) > 0, err
	})
	require.NoError(t, err, "Event %s on HelmChart %s/%s", reason, ns, name)
	return msgs
}

func TestEmbeddedTraefikChartWarnsAboutUnsupportedValues(t *testing.T) {
	c := cluster.Get(t)
	ctx := testContext(t)
	ns := c.Namespace(t)
	ctrl, _ := newHelmForTest(t, c) // its Start installs the HelmChart and HelmChartConfig CRDs
	require.NoError(t, ctrl.Start(ctx, nil))
	content, err := helmchart.ChartContent(chartsFS, "charts/traefik")
	require.NoError(t, err)

	// k3snet's chart as the packaged traefik.yaml installs it, released in a namespace of
	// its own; the IngressClass is cluster-scoped and belongs to the kube-system release.
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	charts := dyn.Resource(helm.HelmChartResource()).Namespace(ns)
	configs := dyn.Resource(helm.HelmChartConfigResource()).Namespace(ns)
	t.Cleanup(func() {
		// The controller stops with the test's context: release the finalizer by hand.
		_, _ = charts.Patch(context.Background(), "traefik", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		_ = charts.Delete(context.Background(), "traefik", metav1.DeleteOptions{})
	})
	_, err = charts.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
		"metadata": map[string]any{"name": "traefik", "namespace": ns},
		"spec": map[string]any{
			"chartContent":  content,
			"valuesContent": "ingressClass: {enabled: false}\nservice: {type: ClusterIP}\n",
		},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	config := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
		"metadata": map[string]any{"name": "traefik", "namespace": ns},
		"spec": map[string]any{"valuesContent": `deployment: {replicas: 2}
ports:
  web:
    redirections: {entryPoint: {to: websecure, scheme: https}}
    forwardedHeaders: {trustedIPs: [10.0.0.0/8]}
logs: {general: {level: debug}}
`},
	}}
	_, err = configs.Create(ctx, config, metav1.CreateOptions{})
	require.NoError(t, err)

	// deploymentArgs waits until Deployment ns/traefik has replicas and args containing want.
	deploymentArgs := func(t *testing.T, replicas int32, want ...string) {
		t.Helper()
		var args []string
		err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "traefik", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			args = dep.Spec.Template.Spec.Containers[0].Args
			for _, w := range want {
				if !slices.Contains(args, w) {
					return false, nil
				}
			}
			return replicasOf(dep) == replicas, nil
		})
		require.NoError(t, err, "Deployment %s/traefik with %d replicas and args %v; last args %v", ns, replicas, want, args)
	}

	t.Run("supported keys are installed and give no UnsupportedValues Event", func(t *testing.T) {
		deploymentArgs(t, 2,
			"--entryPoints.web.http.redirections.entryPoint.to=:443",
			"--entryPoints.web.http.redirections.entryPoint.scheme=https",
			"--entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8",
			"--log.level=DEBUG")
		// The Warning would be sent before the install, and one recorder sends Events in
		// order: once ChartInstalled is there, an UnsupportedValues Event would be too.
		waitHelmChartEvent(t, c, ns, "traefik", helm.ReasonChartInstalled)
		events, err := helmChartEvents(t.Context(), c, ns, "traefik", helm.ReasonUnsupportedValues)
		require.NoError(t, err)
		assert.Empty(t, events)
	})

	t.Run("unsupported keys are named in a Warning and the rest is still upgraded", func(t *testing.T) {
		got, err := configs.Get(t.Context(), "traefik", metav1.GetOptions{})
		require.NoError(t, err)
		require.NoError(t, unstructured.SetNestedField(got.Object, `deployment: {replicas: 3, dnsPolicy: ClusterFirstWithHostNet}
experimental:
  plugins:
    demo: {moduleName: github.com/example/demo, version: v0.1.0}
ports:
  web: {http3: {enabled: true}}
`, "spec", "valuesContent"))
		_, err = configs.Update(t.Context(), got, metav1.UpdateOptions{})
		require.NoError(t, err)

		msgs := waitHelmChartEvent(t, c, ns, "traefik", helm.ReasonUnsupportedValues)
		require.Len(t, msgs, 1)
		assert.True(t, strings.HasPrefix(msgs[0], "Warning: "), msgs[0])
		assert.Contains(t, msgs[0], "ignored: deployment.dnsPolicy, experimental, ports.web.http3 (", "the keys, sorted")
		deploymentArgs(t, 3)
		waitHelmChartEvent(t, c, ns, "traefik", helm.ReasonChartUpgraded)
	})

	t.Run("deleting the HelmChart uninstalls the release", func(t *testing.T) {
		require.NoError(t, charts.Delete(t.Context(), "traefik", metav1.DeleteOptions{}))
		err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			_, err := charts.Get(ctx, "traefik", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		require.NoError(t, err, "the finalizer is released")
		_, err = c.Client.AppsV1().Deployments(ns).Get(t.Context(), "traefik", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "Deployment gone: %v", err)
	})
}

// TestTraefikJobWarnsAboutUnsupportedValues: where k3snet's Traefik chart runs in K3s's helm
// job (helm.RunJob, the klipper-helm image), the job says what it ignores, as the in-process
// controller does: an UnsupportedValues Warning on the HelmChart, and in its result.
func TestTraefikJobWarnsAboutUnsupportedValues(t *testing.T) {
	c := cluster.Get(t)
	ctx := testContext(t)
	ns := c.Namespace(t)
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	defs, err := helmchart.CRDs()
	require.NoError(t, err)
	_, err = crdinstall.Install(ctx, dyn, "k3snet-test", defs...)
	require.NoError(t, err)
	content, err := helmchart.ChartContent(chartsFS, "charts/traefik")
	require.NoError(t, err)
	_, err = dyn.Resource(helmchart.Resource).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
		"metadata": map[string]any{"name": "traefik", "namespace": ns,
			// No controller here: the job is run by hand below.
			"annotations": map[string]any{helmchart.AnnotationUnmanaged: "true"}},
		"spec": map[string]any{"chartContent": content},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)

	root := t.TempDir()
	paths := helm.JobPaths{Config: filepath.Join(root, "config"), Chart: filepath.Join(root, "chart"),
		Auth: filepath.Join(root, "auth"), CAFiles: filepath.Join(root, "ca-files")}
	for _, dir := range []string{paths.Config, paths.Chart} {
		require.NoError(t, os.MkdirAll(dir, 0o700))
	}
	require.NoError(t, os.WriteFile(filepath.Join(paths.Chart, "traefik.tgz.base64"), []byte(content), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(paths.Config, "values-0-000-HelmChart-ValuesContent.yaml"),
		[]byte("ingressClass: {enabled: false}\nservice: {type: ClusterIP}\nnotAKey: 1\n"), 0o600))
	env := helm.JobEnv{Name: "traefik", ChartNamespace: ns, TargetNamespace: ns, ConfigHash: "SHA256=AAAA"}
	res, err := helm.RunJob(ctx, c.Config, env, helm.JobArgs{}, paths)
	require.NoError(t, err)
	assert.Equal(t, "install", res.Action)
	assert.Equal(t, []string{"notAKey"}, res.Unsupported)
	msgs := waitHelmChartEvent(t, c, ns, "traefik", helm.ReasonUnsupportedValues)
	assert.Equal(t, []string{"Warning: k3snet's traefik chart does not support these values, which are ignored: notAKey (install the official Traefik chart for them)"}, msgs)
}
