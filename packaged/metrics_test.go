package packaged

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
)

// TestMetricsRegistry: both controllers export their counters on the registry they are given.
func TestMetricsRegistry(t *testing.T) {
	deployReg, helmReg := metrics.NewKubeRegistry(), metrics.NewKubeRegistry()
	d, err := New(fake.NewClientset(), Options{ManifestsDir: t.TempDir(),
		Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), MetricsRegistry: deployReg})
	require.NoError(t, err)
	h, err := NewHelmController(fake.NewClientset(), HelmOptions{Config: &rest.Config{Host: "https://127.0.0.1:1"}, MetricsRegistry: helmReg})
	require.NoError(t, err)

	d.applies.observe(nil)
	d.applies.observe(errors.New("bad manifest"))
	h.syncs.observe(nil)
	require.NoError(t, testutil.GatherAndCompare(deployReg, strings.NewReader(`
# HELP packaged_manifest_applies_total [ALPHA] Manifest files applied by the deploy controller, by result (success or error).
# TYPE packaged_manifest_applies_total counter
packaged_manifest_applies_total{result="error"} 1
packaged_manifest_applies_total{result="success"} 1
`), "packaged_manifest_applies_total"))
	require.NoError(t, testutil.GatherAndCompare(helmReg, strings.NewReader(`
# HELP packaged_helmchart_syncs_total [ALPHA] HelmChart syncs of the Helm controller, by result (success or error).
# TYPE packaged_helmchart_syncs_total counter
packaged_helmchart_syncs_total{result="success"} 1
`), "packaged_helmchart_syncs_total"))
}
