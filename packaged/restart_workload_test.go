package packaged

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"

	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/packaged/helm"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

// restartWorkload is a manifests directory as a K3s server with add-ons of its own has it:
// manifests files of plain objects (a ConfigMap, a Secret and a ServiceAccount each) and
// charts files of one HelmChart each, whose chart travels inline (chartContent), so
// nothing is downloaded.
type restartWorkload struct {
	manifests, charts int
}

// benchChartContent is a chart of one ConfigMap named after the release, holding the value
// greeting, as chartContent (base64 of the .tgz).
func benchChartContent(tb testing.TB) string {
	tb.Helper()
	content, err := helmchart.ChartContent(fstest.MapFS{
		"bench/Chart.yaml":              {Data: []byte("apiVersion: v2\nname: bench\nversion: 1.0.0\n")},
		"bench/values.yaml":             {Data: []byte("greeting: hello\n")},
		"bench/templates/greeting.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}'}\ndata: {greeting: '{{ .Values.greeting }}'}\n")},
	}, "bench")
	require.NoError(tb, err)
	return content
}

// write writes w's files into dir, named <prefix>-objects-<i>.yaml and <prefix>-chart-<i>.yaml
// (so their Addons are the test's own), every object and release in namespace ns.
func (w restartWorkload) write(tb testing.TB, dir, prefix, ns string) {
	tb.Helper()
	for i := range w.manifests {
		name := fmt.Sprintf("%s-objects-%03d", prefix, i)
		doc := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: %[1]s, namespace: %[2]s}
data: {index: "%[3]d"}
---
apiVersion: v1
kind: Secret
metadata: {name: %[1]s, namespace: %[2]s}
stringData: {token: "secret-%[3]d"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: %[1]s, namespace: %[2]s}
`, name, ns, i)
		require.NoError(tb, os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(doc), 0o600))
	}
	content := benchChartContent(tb)
	for i := range w.charts {
		name := fmt.Sprintf("%s-chart-%03d", prefix, i)
		doc := fmt.Sprintf(`apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  targetNamespace: %[2]s
  chartContent: %[3]s
  valuesContent: |-
    greeting: hello-%[4]d
`, name, ns, content, i)
		require.NoError(tb, os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(doc), 0o600))
	}
}

// packagedStart is one start of the deploy and Helm controllers, as a K3s server runs them,
// over a manifests directory and the HelmCharts of one namespace, every API request they
// send counted.
type packagedStart struct {
	// requests counts what both controllers send, Helm's own requests included.
	requests *requestCounter
	// helmSyncs holds the Helm controller's metrics (its syncs by result).
	helmSyncs metrics.KubeRegistry
	// passes receives the result of every deploy pass.
	passes chan error
	// stop ends both controllers.
	stop context.CancelFunc
}

// startPackaged starts both controllers with clients of their own. They stop when the test
// ends or at stop. The deploy loop's periodic pass is an hour away: passes come from file
// events and the first pass. Both record their Events with recorder, or, when it is nil,
// send them to the API server as in production.
func startPackaged(tb testing.TB, ctx context.Context, c *testcluster.Cluster, dir, ns string, recorder record.EventRecorder) *packagedStart {
	tb.Helper()
	s := &packagedStart{requests: &requestCounter{}, helmSyncs: metrics.NewKubeRegistry(), passes: make(chan error, 64)}
	ctx, s.stop = context.WithCancel(ctx)
	tb.Cleanup(s.stop)
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(s.requests.Wrap)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(tb, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(tb, err)
	deploy, err := New(client, Options{ManifestsDir: dir, Dynamic: dyn, DisableNodeHosts: true,
		Interval: time.Hour, EventRecorder: recorder})
	require.NoError(tb, err)
	deploy.afterPass = func(err error) {
		select {
		case s.passes <- err:
		default:
		}
	}
	charts, err := helm.New(client, helm.Options{Config: cfg, Namespace: ns,
		MetricsRegistry: s.helmSyncs, EventRecorder: recorder})
	require.NoError(tb, err)
	require.NoError(tb, deploy.Start(ctx, informers.NewSharedInformerFactory(client, 0)))
	require.NoError(tb, charts.Start(ctx, nil))
	return s
}

// quietContext is a context whose logs go nowhere: a benchmark's logs are always printed,
// and formatting them would be measured.
func quietContext(ctx context.Context) context.Context {
	return klog.NewContext(ctx, logr.Discard())
}

// waitPass waits for the next deploy pass and returns its error.
func (s *packagedStart) waitPass(tb testing.TB) error {
	tb.Helper()
	select {
	case err := <-s.passes:
		return err
	case <-time.After(10 * time.Minute):
		tb.Fatal("no deploy pass in 10 minutes")
		return nil
	}
}

// waitHelmSyncs waits until the Helm controller has synced n HelmCharts successfully.
func (s *packagedStart) waitHelmSyncs(tb testing.TB, n int) {
	tb.Helper()
	err := pollFor(tb.Context(), 10*time.Millisecond, func(context.Context) (bool, error) {
		return helmSyncs(tb, s.helmSyncs, "success") >= float64(n), nil
	})
	require.NoError(tb, err, "%d successful HelmChart syncs", n)
}

// pollFor calls cond every interval for up to ten minutes: a first start of the large
// workload installs its releases one after another.
func pollFor(ctx context.Context, interval time.Duration, cond wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, interval, 10*time.Minute, true, cond)
}

// waitDeployed waits until every HelmChart of ns says its release is deployed.
func waitDeployed(tb testing.TB, c *testcluster.Cluster, ns string, charts int) {
	tb.Helper()
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(tb, err)
	deployed := 0
	err = pollFor(tb.Context(), 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		list, err := dyn.Resource(helm.HelmChartResource()).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		deployed = 0
		for i := range list.Items {
			if failedCondition(&list.Items[i]) == "False/Deployed" {
				deployed++
			}
		}
		return deployed == charts, nil
	})
	require.NoError(tb, err, "HelmCharts deployed: %d of %d", deployed, charts)
}

// cleanupWorkload removes, when the test ends, what the namespace's deletion does not: the
// HelmCharts' finalizers (no controller runs by then) and the workload's Addons.
func cleanupWorkload(tb testing.TB, c *testcluster.Cluster, prefix, ns string) {
	tb.Cleanup(func() {
		ctx := context.Background()
		dyn, err := dynamic.NewForConfig(c.Config)
		if err != nil {
			tb.Errorf("cleaning up: %v", err)
			return
		}
		if list, err := dyn.Resource(helm.HelmChartResource()).Namespace(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, hc := range list.Items {
				_, _ = dyn.Resource(helm.HelmChartResource()).Namespace(ns).Patch(ctx, hc.GetName(),
					types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			}
		}
		if list, err := dyn.Resource(addonResource()).Namespace(addonNamespace).List(ctx, metav1.ListOptions{}); err == nil {
			for _, a := range list.Items {
				if strings.HasPrefix(a.GetName(), prefix+"-") {
					_ = dyn.Resource(addonResource()).Namespace(addonNamespace).Delete(ctx, a.GetName(), metav1.DeleteOptions{})
				}
			}
		}
	})
}
