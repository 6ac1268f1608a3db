package helm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
)

// TestMetricsRegistry: the Helm controller exports its counter on the registry it is given.
func TestMetricsRegistry(t *testing.T) {
	reg := metrics.NewKubeRegistry()
	h, err := New(fake.NewClientset(), Options{Config: &rest.Config{Host: "https://127.0.0.1:1"}, MetricsRegistry: reg})
	require.NoError(t, err)
	h.syncs.Observe(nil)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP packaged_helmchart_syncs_total [ALPHA] HelmChart syncs of the Helm controller, by result (success or error).
# TYPE packaged_helmchart_syncs_total counter
packaged_helmchart_syncs_total{result="success"} 1
`), "packaged_helmchart_syncs_total"))
}
