package helm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart"
	"sigs.k8s.io/yaml"
)

func TestUnsupportedTraefikValues(t *testing.T) {
	tests := []struct {
		name   string
		values string
		want   []string
	}{
		{name: "nothing", values: "", want: nil},
		{name: "K3s's own traefik.yaml values", values: `
podAnnotations: {prometheus.io/port: "8082"}
deployment: {podAnnotations: {a: b}}
providers: {kubernetesIngress: {publishedService: {enabled: true}}}
priorityClassName: system-cluster-critical
image: {repository: rancher/mirrored-library-traefik, tag: "3.6.12"}
tolerations: [{key: CriticalAddonsOnly, operator: Exists}]
service: {ipFamilyPolicy: PreferDualStack}
global: {systemDefaultRegistry: ""}
`, want: nil},
		{name: "every port key, any port name, both expose forms", values: `
ports:
  web:
    port: 8000
    exposedPort: 80
    expose: {default: true}
    protocol: TCP
    nodePort: 30080
    redirections: {entryPoint: {to: websecure, scheme: https, permanent: true, priority: 10}}
    forwardedHeaders: {trustedIPs: [10.0.0.0/8], insecure: false}
    proxyProtocol: {trustedIPs: [10.0.0.0/8], insecure: true}
  metrics: {port: 9100, expose: true}
  old: {redirectTo: {port: websecure}}
  older: {redirectTo: websecure}
  websecure: {tls: {enabled: true, certResolver: le}}
`, want: nil},
		{name: "free-form maps and lists are taken whole", values: `
resources: {limits: {cpu: "1", memory: 1Gi}}
service: {spec: {externalTrafficPolicy: Local, loadBalancerSourceRanges: [10.0.0.0/8]}, annotations: {x: y}}
nodeSelector: {kubernetes.io/os: linux}
env: [{name: A, value: b}]
volumes: [{name: certs, mountPath: /certs, type: secret}]
`, want: nil},
		{name: "unsupported keys anywhere, sorted, not descended into", values: `
experimental: {plugins: {demo: {moduleName: x, version: v1}}}
ports: {web: {expose: {default: true, internal: true}, http3: {enabled: true}}}
deployment: {kind: DaemonSet, dnsPolicy: ClusterFirstWithHostNet}
logs: {general: {format: json}}
affinity: {}
`, want: []string{"affinity", "deployment.dnsPolicy", "experimental", "logs.general.format", "ports.web.expose.internal", "ports.web.http3"}},
		{name: "a scalar where a map of supported keys belongs", values: `
ports: {web: true}
providers: false
`, want: []string{"ports.web", "providers"}},
		{name: "null removes a default and is no unsupported key", values: `
ports: {traefik: null}
metrics: null
`, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vals map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(tt.values), &vals))
			assert.Equal(t, tt.want, UnsupportedTraefikValues(vals))
		})
	}
}

func TestIsEmbeddedTraefik(t *testing.T) {
	ours := &chart.Chart{Metadata: &chart.Metadata{Name: "traefik", Annotations: map[string]string{annotationEmbeddedChart: "traefik"}}}
	official := &chart.Chart{Metadata: &chart.Metadata{Name: "traefik"}}
	tests := []struct {
		name string
		src  chartSource
		ch   *chart.Chart
		want bool
	}{
		{name: "our chart inline", src: chartSource{kind: sourceInline}, ch: ours, want: true},
		{name: "the official chart inline", src: chartSource{kind: sourceInline}, ch: official},
		{name: "a chart carrying our annotation from a repository", src: chartSource{kind: sourceRepo}, ch: ours},
		{name: "from an OCI registry", src: chartSource{kind: sourceOCI}, ch: ours},
		{name: "another chart with the annotation", src: chartSource{kind: sourceInline},
			ch: &chart.Chart{Metadata: &chart.Metadata{Name: "traefik-crd", Annotations: map[string]string{annotationEmbeddedChart: "traefik"}}}},
		{name: "no metadata", src: chartSource{kind: sourceInline}, ch: &chart.Chart{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, isEmbeddedTraefik(tt.src, tt.ch))
		})
	}
}

func TestUnsupportedValuesMessageIsBounded(t *testing.T) {
	assert.Equal(t, "k3snet's traefik chart does not support these values, which are ignored: a, b.c (install the official Traefik chart for them)",
		unsupportedValuesMessage([]string{"a", "b.c"}))

	var long []string
	for i := range 50 {
		long = append(long, fmt.Sprintf("key%02d.%s", i, strings.Repeat("x", 300)))
	}
	msg := unsupportedValuesMessage(long)
	assert.Contains(t, msg, "key00."+strings.Repeat("x", 94)+"...", "each key is cut to 100 characters")
	assert.Contains(t, msg, "key06.")
	assert.NotContains(t, msg, "key07.")
	assert.Contains(t, msg, " and 43 more")
	assert.Less(t, len(msg), 1024)

	var many []string
	for i := range 30 {
		many = append(many, fmt.Sprintf("k%02d", i))
	}
	msg = unsupportedValuesMessage(many)
	assert.Contains(t, msg, "k19")
	assert.NotContains(t, msg, "k20")
	assert.Contains(t, msg, " and 10 more")
}
