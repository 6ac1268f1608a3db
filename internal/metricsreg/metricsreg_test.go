package metricsreg

import (
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
