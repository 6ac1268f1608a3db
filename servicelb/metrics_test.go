package servicelb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/component-base/metrics"
)

func TestMetricsAreRegisteredPerController(t *testing.T) {
	reg := metrics.NewKubeRegistry()
	c, err := New(fake.NewClientset(), Options{MetricsRegistry: reg})
	require.NoError(t, err)
	c.metrics.syncs.WithLabelValues("success").Inc()
	c.metrics.statusUpdates.Inc()

	families, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	// The served-Services gauge waits for Start, which sets the Service lister.
	assert.ElementsMatch(t, []string{"servicelb_syncs_total", "servicelb_status_updates_total"}, names)

	_, err = New(fake.NewClientset(), Options{MetricsRegistry: reg})
	assert.Error(t, err, "a second controller on the same registry should be refused")

	_, err = New(fake.NewClientset(), Options{})
	assert.NoError(t, err, "no registry registers nothing")
}
