package packaged

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIsTraefikV1Chart(t *testing.T) {
	tests := []struct {
		name  string
		chart string
		want  bool
	}{
		{name: "K3s's v1 chart URL is v1", chart: "https://%{KUBERNETES_API}%/static/charts/traefik-1.81.0.tgz", want: true},
		{name: "a bare v1 file name is v1", chart: "traefik-1.9.1.tgz", want: true},
		{name: "a v2 chart URL is not v1", chart: "https://%{KUBERNETES_API}%/static/charts/traefik-10.19.300.tgz", want: false},
		{name: "the CRD chart is not v1", chart: "https://example/static/charts/traefik-crd-1.0.0.tgz", want: false},
		{name: "an inline chart (no chart field) is not v1", chart: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, isTraefikV1Chart(tt.chart))
		})
	}
}
