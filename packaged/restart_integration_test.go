package packaged

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"

	"github.com/k3snet/k3snet/internal/events"
	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/packaged/helm"
)

// TestRestartWithNothingChangedWritesNothing restarts the deploy and Helm controllers over a
// manifests directory they have applied (BenchmarkRestart's smallest workload: 20 files of
// objects, 5 HelmCharts with inline charts) and checks that the restart, once both have
// synced everything, wrote nothing: no object, Addon or HelmChart write, no Helm upgrade
// (no release record written), no status write and no Event; and that the deploy
// controller read the Addons in one request, not one a file, and the Helm controller each
// release's records once.
func TestRestartWithNothingChangedWritesNothing(t *testing.T) {
	c := cluster.Get(t)
	ns := c.Namespace(t)
	prefix := testcluster.UniqueName("restart")
	cleanupWorkload(t, c, prefix, ns)
	dir := t.TempDir()
	w := restartWorkload{manifests: 20, charts: 5}
	w.write(t, dir, prefix, ns)
	ctx := testContext(t)

	first := startPackaged(t, ctx, c, dir, ns, nil)
	require.NoError(t, first.waitPass(t))
	waitDeployed(t, c, ns, w.charts)
	first.stop()
	before := storedVersions(t, c, prefix, ns)
	require.Len(t, before, 4*(w.manifests+w.charts), "three objects a file, a HelmChart with its release ConfigMap and record, an Addon a file")

	recorder := record.NewFakeRecorder(1000)
	restarted := startPackaged(t, ctx, c, dir, ns, recorder)
	require.NoError(t, restarted.waitPass(t), "the first pass after the restart")
	restarted.waitHelmSyncs(t, w.charts)
	restarted.stop()

	requests := restarted.requests.snapshot()
	assert.Empty(t, writesOf(requests, false), "API writes of the restart")
	assert.Equal(t, 1, requests[apiRequest{"list", "addons"}], "the first pass reads the Addons in one LIST")
	assert.Zero(t, requests[apiRequest{"get", "addons"}], "and none one by one")
	assert.Equal(t, w.charts, requests[apiRequest{"list", "secrets"}], "Helm reads each release's history once")
	assert.Empty(t, events.Drain(recorder), "Events of the restart")
	assert.Zero(t, helmSyncs(t, restarted.helmSyncs, "error"), "failed HelmChart syncs")
	assert.Equal(t, before, storedVersions(t, c, prefix, ns), "resourceVersions of every object, release record and Addon")
}

// storedVersions maps every object of the workload (prefix, ns) to its resourceVersion: the
// objects of its files, the HelmCharts, what their releases installed and Helm's release
// records, and the files' Addons. It is read with the admin client, so a write the counted
// clients did not send is seen too.
func storedVersions(t *testing.T, c *testcluster.Cluster, prefix, ns string) map[string]string {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	out := map[string]string{}
	read := func(gvr schema.GroupVersionResource, namespace string, keep func(name string) bool) {
		list, err := dyn.Resource(gvr).Namespace(namespace).List(context.Background(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, o := range list.Items {
			if keep(o.GetName()) {
				out[gvr.Resource+"/"+o.GetName()] = o.GetResourceVersion()
			}
		}
	}
	ours := func(name string) bool { return strings.HasPrefix(name, prefix+"-") }
	for _, gvr := range []schema.GroupVersionResource{gvrConfigMap, gvrSecret, helm.HelmChartResource(),
		{Version: "v1", Resource: "serviceaccounts"}} {
		read(gvr, ns, func(name string) bool { return ours(name) || strings.HasPrefix(name, "sh.helm.release.v1."+prefix+"-") })
	}
	read(addonResource(), addonNamespace, ours)
	return out
}
