package metricsreg

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/component-base/metrics"
)

func counter() *metrics.Counter {
	return metrics.NewCounter(&metrics.CounterOpts{Name: "k3snet_test_total", Help: "test", StabilityLevel: metrics.ALPHA})
}

func TestRegister(t *testing.T) {
	assert.NoError(t, Register(nil, nil, counter()), "no registry registers nothing")

	reg := metrics.NewKubeRegistry()
	c := counter()
	require.NoError(t, Register(reg, nil, c))
	c.Inc()
	families, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, families, 1)
	assert.Equal(t, "k3snet_test_total", families[0].GetName())

	assert.Error(t, Register(reg, nil, counter()), "the same metric twice is refused")
}

func TestResultCount(t *testing.T) {
	reg := metrics.NewKubeRegistry()
	c, err := NewResultCounter(reg, "sub", "syncs_total", "Syncs.")
	require.NoError(t, err)
	_ = c.Observe(nil)
	_ = c.Observe(nil)
	_ = c.Observe(errors.New("x"))
	for result, want := range map[string]float64{"success": 2, "error": 1, "other": 0} {
		got, err := ResultCount(reg, "sub_syncs_total", result)
		require.NoError(t, err)
		assert.Equal(t, want, got, result)
	}
}
