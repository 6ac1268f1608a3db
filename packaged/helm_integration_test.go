package packaged

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/k3snet/k3snet/packaged/helm"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/metricsreg"
	"github.com/k3snet/k3snet/internal/testcluster"
)

// traefikConfig is the documented K3s customisation: a HelmChartConfig kube-system/traefik
// dropped into the manifests directory, here with two replicas and an extra port.
const traefikConfig = `apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata:
  name: traefik
  namespace: kube-system
spec:
  valuesContent: |-
    deployment:
      replicas: 2
    ports:
      extra:
        port: 9100
        expose: true
        exposedPort: 9100
        protocol: TCP
`

// newHelmForTest builds a helm.Controller whose API requests are counted.
func newHelmForTest(t *testing.T, c *testcluster.Cluster) (*helm.Controller, *testcluster.WriteCounter) {
	return newHelmForTestWith(t, c, helm.Options{})
}

// newHelmForTestWith is newHelmForTest with opts (Config is set here).
func newHelmForTestWith(t *testing.T, c *testcluster.Cluster, opts helm.Options) (*helm.Controller, *testcluster.WriteCounter) {
	t.Helper()
	counter := &testcluster.WriteCounter{}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(counter.Wrap)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	opts.Config = cfg
	ctrl, err := helm.New(client, opts)
	require.NoError(t, err)
	return ctrl, counter
}

// helmSyncs reads packaged_helmchart_syncs_total{result} (success or error) from reg.
func helmSyncs(tb testing.TB, reg metrics.KubeRegistry, result string) float64 {
	tb.Helper()
	n, err := metricsreg.ResultCount(reg, "packaged_helmchart_syncs_total", result)
	require.NoError(tb, err)
	return n
}

// traefikState is what the test reads back from the Traefik objects.
type traefikState struct {
	replicas int32
	svcType  corev1.ServiceType
	ports    []int32
}

// readTraefik returns the state of Deployment and Service kube-system/traefik, or false
// when either is missing.
func readTraefik(ctx context.Context, c *testcluster.Cluster) (traefikState, bool, error) {
	dep, err := c.Client.AppsV1().Deployments("kube-system").Get(ctx, "traefik", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return traefikState{}, false, nil
	}
	if err != nil {
		return traefikState{}, false, err
	}
	svc, err := c.Client.CoreV1().Services("kube-system").Get(ctx, "traefik", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return traefikState{}, false, nil
	}
	if err != nil {
		return traefikState{}, false, err
	}
	return traefikState{replicas: replicasOf(dep), svcType: svc.Spec.Type, ports: servicePorts(svc)}, true, nil
}

func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func servicePorts(svc *corev1.Service) []int32 {
	var out []int32
	for _, p := range svc.Spec.Ports {
		out = append(out, p.Port)
	}
	slices.Sort(out)
	return out
}

// waitTraefik waits until the Traefik objects are in state want.
func waitTraefik(t *testing.T, c *testcluster.Cluster, want traefikState) {
	t.Helper()
	var got traefikState
	err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		s, ok, err := readTraefik(ctx, c)
		got = s
		return ok && s.replicas == want.replicas && s.svcType == want.svcType && slices.Equal(s.ports, want.ports), err
	})
	require.NoError(t, err, "Traefik objects: want %+v, last seen %+v", want, got)
}

// releaseRevisions lists the revisions Helm recorded for release kube-system/name, where the
// helm CLI reads them (Secrets labelled owner=helm).
func releaseRevisions(t *testing.T, c *testcluster.Cluster, name string) []string {
	t.Helper()
	out, err := listRevisions(t.Context(), c, name)
	require.NoError(t, err)
	return out
}

func listRevisions(ctx context.Context, c *testcluster.Cluster, name string) ([]string, error) {
	return revisionsIn(ctx, c, "kube-system", name)
}

// revisionsIn lists the revisions of release ns/name as "<version>/<status>", sorted.
func revisionsIn(ctx context.Context, c *testcluster.Cluster, ns, name string) ([]string, error) {
	list, err := c.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, s.Labels["version"]+"/"+s.Labels["status"])
	}
	slices.Sort(out)
	return out, nil
}

// failedCondition returns "<status>/<reason>" of a HelmChart's Failed condition.
func failedCondition(hc *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(hc.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == helm.ConditionFailed {
			return fmt.Sprintf("%v/%v", m["status"], m["reason"])
		}
	}
	return ""
}

func TestHelmChartsInstallTraefikAndFollowHelmChartConfig(t *testing.T) {
	c := cluster.Get(t)
	ctx := testContext(t)
	dir := t.TempDir()
	vars := Vars{ClusterDNS: []netip.Addr{netip.MustParseAddr("10.43.0.10")}}
	// Stage Traefik only: the deploy test owns the coredns Addon and reads its source.
	require.NoError(t, Stage(dir, vars, map[string]bool{"coredns": true}))
	h := newHarness(t, c, dir, nil)
	require.NoError(t, h.pass(t))

	ctrl, _ := newHelmForTest(t, c)
	require.NoError(t, ctrl.Start(ctx, nil))
	// Whatever happens below, leave no HelmChart whose finalizer nobody releases: disable
	// traefik (deletes the HelmCharts, the file and the Addon) while the controller runs.
	// t.Context has ended when cleanups run, and the controller with it, so drop the
	// finalizers by hand first.
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(dir, "traefik.yaml")); err != nil {
			return
		}
		for _, name := range []string{"traefik", "traefik-crd"} {
			_, _ = h.dyn.Resource(helm.HelmChartResource()).Namespace("kube-system").Patch(context.Background(), name,
				types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		}
		_, _ = newHarness(t, c, dir, map[string]bool{"traefik": true}).c.pass(context.Background())
	})

	defaults := traefikState{replicas: 1, svcType: corev1.ServiceTypeLoadBalancer, ports: []int32{80, 443}}
	waitTraefik(t, c, defaults)
	err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		hc, err := h.get(t, gvrHelmChart, "kube-system", "traefik")
		if err != nil {
			return false, err
		}
		return slices.Contains(hc.GetFinalizers(), helm.Finalizer) && hc.GetAnnotations()[helm.AnnotationManagedBy] == helm.DefaultManagedBy, nil
	})
	require.NoError(t, err, "the HelmChart is claimed and carries the finalizer")
	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		for _, name := range []string{"traefik", "traefik-crd"} {
			revs, err := listRevisions(ctx, c, name)
			if err != nil || !slices.Equal(revs, []string{"1/deployed"}) {
				return false, err
			}
		}
		return true, nil
	})
	require.NoError(t, err, "helm list sees both releases, deployed once")

	t.Run("a HelmChartConfig in the manifests directory changes the Deployment and Service", func(t *testing.T) {
		h.write(t, "traefik-config.yaml", traefikConfig)
		require.NoError(t, h.pass(t))
		waitTraefik(t, c, traefikState{replicas: 2, svcType: corev1.ServiceTypeLoadBalancer, ports: []int32{80, 443, 9100}})
	})

	t.Run("removing the HelmChartConfig restores the defaults", func(t *testing.T) {
		// Removing a file does not delete its objects (as in K3s): delete the config too.
		require.NoError(t, os.Remove(filepath.Join(dir, "traefik-config.yaml")))
		err := h.dyn.Resource(helm.HelmChartConfigResource()).Namespace("kube-system").Delete(t.Context(), "traefik", metav1.DeleteOptions{})
		require.NoError(t, err)
		waitTraefik(t, c, defaults)
	})

	t.Run("a pass with nothing changed makes no Helm upgrade and no write", func(t *testing.T) {
		// The previous step saw the objects change; wait until Helm has also recorded the
		// upgrade as deployed, so no operation is in flight.
		var before []string
		err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			revs, err := listRevisions(ctx, c, "traefik")
			before = revs
			return err == nil && slices.Equal(revs, []string{"1/superseded", "2/superseded", "3/deployed"}), err
		})
		require.NoError(t, err, "release history, last seen %v", before)
		// A second controller for kube-system, whose two HelmCharts are traefik-crd and
		// traefik: its metrics say when it has synced both.
		reg := metrics.NewKubeRegistry()
		again, counter := newHelmForTestWith(t, c, helm.Options{Namespace: "kube-system", MetricsRegistry: reg})
		syncCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		require.NoError(t, again.Start(syncCtx, nil))
		require.NoError(t, c.Poll(t.Context(), func(context.Context) (bool, error) {
			return helmSyncs(t, reg, "success") >= 2, nil
		}), "the second controller syncs both HelmCharts")
		assert.Empty(t, counter.Since(0), "a second controller finds both releases up to date")
		assert.Equal(t, before, releaseRevisions(t, c, "traefik"), "no new release revision")
	})

	t.Run("the status says the release is deployed", func(t *testing.T) {
		err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			hc, err := h.get(t, gvrHelmChart, "kube-system", "traefik")
			if err != nil {
				return false, err
			}
			return failedCondition(hc) == "False/Deployed", nil
		})
		require.NoError(t, err)
	})

	t.Run("a chart from an unsupported source gets a Warning and is still deleted", func(t *testing.T) {
		ns := c.Namespace(t)
		// A K3s v1 Traefik chart, served from the K3s server's static directory, which this
		// controller is not given.
		hc := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
			"metadata": map[string]any{"name": "remote", "namespace": ns},
			"spec":     map[string]any{"chart": "https://%{KUBERNETES_API}%/static/charts/traefik-1.81.0.tgz"},
		}}
		res := h.dyn.Resource(helm.HelmChartResource()).Namespace(ns)
		_, err := res.Create(t.Context(), hc, metav1.CreateOptions{})
		require.NoError(t, err)
		err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			got, err := res.Get(ctx, "remote", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return failedCondition(got) == "True/"+helm.ReasonUnsupportedChartSource && slices.Contains(got.GetFinalizers(), helm.Finalizer), nil
		})
		require.NoError(t, err, "condition Failed True and the finalizer")
		err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			events, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
				"involvedObject.name": "remote", "reason": helm.ReasonUnsupportedChartSource}.String()})
			return err == nil && len(events.Items) > 0, err
		})
		require.NoError(t, err, "a Warning Event says why")
		require.NoError(t, res.Delete(t.Context(), "remote", metav1.DeleteOptions{}))
		err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			_, err := res.Get(ctx, "remote", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		require.NoError(t, err, "the finalizer is released")
	})

	t.Run("deleting the HelmChart uninstalls the release and releases the finalizer", func(t *testing.T) {
		disabled := newHarness(t, c, dir, map[string]bool{"traefik": true})
		require.NoError(t, disabled.pass(t))
		err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			for _, name := range []string{"traefik", "traefik-crd"} {
				if _, err := h.get(t, gvrHelmChart, "kube-system", name); !apierrors.IsNotFound(err) {
					return false, nil
				}
			}
			_, ok, err := readTraefik(ctx, c)
			return !ok, err
		})
		require.NoError(t, err, "HelmCharts, Deployment and Service are gone")
		_, err = c.Client.AppsV1().Deployments("kube-system").Get(t.Context(), "traefik", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "Deployment gone: %v", err)
		_, err = c.Client.CoreV1().Services("kube-system").Get(t.Context(), "traefik", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "Service gone: %v", err)
		assert.Empty(t, releaseRevisions(t, c, "traefik"), "no release record left")
	})
}
