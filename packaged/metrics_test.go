package packaged

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
)

// TestMetricsRegistry: the deploy controller exports its counter on the registry it is given.
func TestMetricsRegistry(t *testing.T) {
	deployReg := metrics.NewKubeRegistry()
	d, err := New(fake.NewClientset(), Options{ManifestsDir: t.TempDir(),
		Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), MetricsRegistry: deployReg})
	require.NoError(t, err)

	d.applies.Observe(nil)
	d.applies.Observe(errors.New("bad manifest"))
	require.NoError(t, testutil.GatherAndCompare(deployReg, strings.NewReader(`
# HELP packaged_manifest_applies_total [ALPHA] Manifest files applied by the deploy controller, by result (success or error).
# TYPE packaged_manifest_applies_total counter
packaged_manifest_applies_total{result="error"} 1
packaged_manifest_applies_total{result="success"} 1
`), "packaged_manifest_applies_total"))
}
