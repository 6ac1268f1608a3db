package packaged

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/k3snet/k3snet/packaged/helm"
	"github.com/k3snet/k3snet/packaged/helmchart"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// renderTraefik renders the embedded Traefik chart as release kube-system/traefik with
// valuesContent (a HelmChartConfig's) over the chart's defaults, and returns the objects by
// "<Kind>/<name>".
func renderTraefik(t *testing.T, valuesContent string) (map[string]*unstructured.Unstructured, error) {
	t.Helper()
	content, err := helmchart.ChartContent(chartsFS, "charts/traefik")
	require.NoError(t, err)
	files, err := helm.RenderInline(&unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
		"metadata": map[string]any{"name": "traefik", "namespace": "kube-system"},
		"spec":     map[string]any{"chartContent": content, "valuesContent": valuesContent},
	}})
	if err != nil {
		return nil, err
	}
	out := map[string]*unstructured.Unstructured{}
	for name, text := range files {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(text, "\n---") {
			var m map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(doc), &m), "%s:\n%s", name, doc)
			if len(m) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			out[u.GetKind()+"/"+u.GetName()] = u
		}
	}
	return out, nil
}

// renderedWorkload is what the table test reads back from a rendered chart.
type renderedWorkload struct {
	objs      map[string]*unstructured.Unstructured
	workload  *unstructured.Unstructured
	pod       map[string]any
	container map[string]any
	args      []string
	service   *unstructured.Unstructured
}

// readRendered picks the workload (Deployment or DaemonSet traefik), its pod spec, its
// container and args, and the Service out of objs.
func readRendered(t *testing.T, objs map[string]*unstructured.Unstructured) renderedWorkload {
	t.Helper()
	r := renderedWorkload{objs: objs, service: objs["Service/traefik"]}
	r.workload = objs["Deployment/traefik"]
	if r.workload == nil {
		r.workload = objs["DaemonSet/traefik"]
	}
	require.NotNil(t, r.workload, "a Deployment or DaemonSet traefik")
	pod, _, err := unstructured.NestedMap(r.workload.Object, "spec", "template", "spec")
	require.NoError(t, err)
	r.pod = pod
	containers, _, _ := unstructured.NestedSlice(pod, "containers")
	require.Len(t, containers, 1)
	r.container = containers[0].(map[string]any)
	args, _, err := unstructured.NestedStringSlice(r.container, "args")
	require.NoError(t, err)
	r.args = args
	return r
}

// serviceRendered is a Service port as "<name> <port>-><targetPort>[ nodePort <n>]".
func serviceRendered(t *testing.T, svc *unstructured.Unstructured) []string {
	t.Helper()
	require.NotNil(t, svc, "Service traefik")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	var out []string
	for _, p := range ports {
		m := p.(map[string]any)
		s := m["name"].(string) + " " + toString(m["port"]) + "->" + toString(m["targetPort"])
		if n, ok := m["nodePort"]; ok {
			s += " nodePort " + toString(n)
		}
		out = append(out, s)
	}
	return out
}

// toString formats a YAML scalar (numbers decode as float64) without a fraction.
func toString(v any) string {
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}

// defaultTraefikArgs are the arguments of the chart's defaults, which
// examples/k3slike/realnode_traefik_test.go relies on.
var defaultTraefikArgs = []string{
	"--entryPoints.traefik.address=:8080/tcp",
	"--entryPoints.web.address=:8000/tcp",
	"--entryPoints.websecure.address=:8443/tcp",
	"--api.dashboard=true",
	"--ping=true",
	"--log.level=INFO",
	"--providers.kubernetescrd",
	"--providers.kubernetesingress",
}

func TestTraefikChartRendersOfficialChartValues(t *testing.T) {
	tests := []struct {
		name   string
		values string
		// wantErr is part of the render error; check is not called then.
		wantErr string
		check   func(t *testing.T, r renderedWorkload)
	}{
		{name: "defaults", check: func(t *testing.T, r renderedWorkload) {
			assert.Equal(t, "Deployment", r.workload.GetKind())
			assert.Equal(t, defaultTraefikArgs, r.args)
			assert.Equal(t, []string{"web 80->web", "websecure 443->websecure"}, serviceRendered(t, r.service))
			typ, _, _ := unstructured.NestedString(r.service.Object, "spec", "type")
			assert.Equal(t, "LoadBalancer", typ)
			assert.Equal(t, "rancher/mirrored-library-traefik:3.6.12", r.container["image"])
			assert.NotContains(t, r.objs, "IngressRoute/traefik-dashboard")
			assert.NotContains(t, r.pod, "hostNetwork")
			assert.NotContains(t, r.container, "env")
			assert.NotContains(t, r.container, "volumeMounts")
		}},
		{name: "the dashboard through an IngressRoute", values: `
ingressRoute:
  dashboard:
    enabled: true
    annotations: {note: dashboard}
`, check: func(t *testing.T, r renderedWorkload) {
			ir := r.objs["IngressRoute/traefik-dashboard"]
			require.NotNil(t, ir, "IngressRoute traefik-dashboard")
			assert.Equal(t, "traefik.io/v1alpha1", ir.GetAPIVersion())
			assert.Equal(t, "kube-system", ir.GetNamespace())
			assert.Equal(t, "dashboard", ir.GetAnnotations()["note"])
			eps, _, _ := unstructured.NestedStringSlice(ir.Object, "spec", "entryPoints")
			assert.Equal(t, []string{"traefik"}, eps)
			routes, _, _ := unstructured.NestedSlice(ir.Object, "spec", "routes")
			require.Len(t, routes, 1)
			route := routes[0].(map[string]any)
			assert.Equal(t, "PathPrefix(`/dashboard`) || PathPrefix(`/api`)", route["match"])
			assert.Equal(t, []any{map[string]any{"name": "api@internal", "kind": "TraefikService"}}, route["services"])
			assert.Contains(t, r.args, "--api.dashboard=true")
		}},
		{name: "the dashboard needs api.dashboard", values: "api: {dashboard: false}\ningressRoute: {dashboard: {enabled: true}}\n",
			wantErr: "needs api.dashboard"},
		{name: "redirect web to websecure", values: `
ports:
  web:
    redirections:
      entryPoint: {to: websecure, scheme: https, permanent: true}
`, check: func(t *testing.T, r renderedWorkload) {
			assert.Subset(t, r.args, []string{
				"--entryPoints.web.http.redirections.entryPoint.to=:443",
				"--entryPoints.web.http.redirections.entryPoint.scheme=https",
				"--entryPoints.web.http.redirections.entryPoint.permanent=true",
			})
			assert.Equal(t, defaultTraefikArgs, r.args[:len(defaultTraefikArgs)], "the defaults stay, in order")
		}},
		{name: "the older redirectTo form", values: "ports: {web: {redirectTo: {port: websecure, priority: 10}}}\n",
			check: func(t *testing.T, r renderedWorkload) {
				assert.Subset(t, r.args, []string{
					"--entryPoints.web.http.redirections.entryPoint.to=:443",
					"--entryPoints.web.http.redirections.entryPoint.scheme=https",
					"--entryPoints.web.http.redirections.entryPoint.priority=10",
				})
				assert.NotContains(t, strings.Join(r.args, " "), "permanent", "unset permanent is Traefik's default")
			}},
		{name: "a redirect to a port that does not exist", values: "ports: {web: {redirections: {entryPoint: {to: nope}}}}\n",
			wantErr: `redirects to "nope", which is not a port`},
		{name: "DaemonSet on the host network", values: "deployment: {kind: DaemonSet, replicas: 3}\nhostNetwork: true\n",
			check: func(t *testing.T, r renderedWorkload) {
				assert.Equal(t, "DaemonSet", r.workload.GetKind())
				assert.NotContains(t, r.objs, "Deployment/traefik")
				_, found, _ := unstructured.NestedFieldNoCopy(r.workload.Object, "spec", "replicas")
				assert.False(t, found, "a DaemonSet has no replicas")
				assert.Equal(t, true, r.pod["hostNetwork"])
				assert.Equal(t, defaultTraefikArgs, r.args)
			}},
		{name: "an unknown workload kind", values: "deployment: {kind: StatefulSet}\n", wantErr: "Deployment or DaemonSet"},
		{name: "replicas", values: "deployment: {replicas: 3}\n", check: func(t *testing.T, r renderedWorkload) {
			n, _, _ := unstructured.NestedFieldNoCopy(r.workload.Object, "spec", "replicas")
			assert.EqualValues(t, 3, n)
		}},
		{name: "extra env, envFrom, volumes and resources", values: `
env:
  - {name: CF_API_EMAIL, valueFrom: {secretKeyRef: {name: cloudflare, key: email}}}
envFrom:
  - secretRef: {name: extra}
volumes:
  - {name: my.certs, mountPath: /certs, type: secret}
  - {name: traefik-config, mountPath: /config, type: configMap}
resources:
  limits: {memory: 256Mi}
`, check: func(t *testing.T, r renderedWorkload) {
			assert.Equal(t, []any{map[string]any{"name": "CF_API_EMAIL", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "cloudflare", "key": "email"}}}}, r.container["env"])
			assert.Equal(t, []any{map[string]any{"secretRef": map[string]any{"name": "extra"}}}, r.container["envFrom"])
			assert.Equal(t, []any{
				map[string]any{"name": "my-certs", "mountPath": "/certs", "readOnly": true},
				map[string]any{"name": "traefik-config", "mountPath": "/config", "readOnly": true},
			}, r.container["volumeMounts"])
			assert.Equal(t, []any{
				map[string]any{"name": "my-certs", "secret": map[string]any{"secretName": "my.certs"}},
				map[string]any{"name": "traefik-config", "configMap": map[string]any{"name": "traefik-config"}},
			}, r.pod["volumes"])
			assert.Equal(t, map[string]any{"limits": map[string]any{"memory": "256Mi"}}, r.container["resources"])
		}},
		{name: "a volume of another type", values: "volumes: [{name: x, mountPath: /x, type: hostPath}]\n", wantErr: "secret or configMap"},
		{name: "Service spec, annotations, nodePort and an unexposed websecure", values: `
service:
  annotations: {metallb.universe.tf/address-pool: public}
  spec: {externalTrafficPolicy: Local, type: NodePort}
ports:
  web: {nodePort: 30080}
  websecure: {expose: false}
`, check: func(t *testing.T, r renderedWorkload) {
			assert.Equal(t, []string{"web 80->web nodePort 30080"}, serviceRendered(t, r.service))
			spec, _, _ := unstructured.NestedMap(r.service.Object, "spec")
			assert.Equal(t, "Local", spec["externalTrafficPolicy"])
			assert.Equal(t, "NodePort", spec["type"], "service.spec wins over service.type")
			assert.NotEmpty(t, spec["selector"])
			assert.Equal(t, "public", r.service.GetAnnotations()["metallb.universe.tf/address-pool"])
			assert.Contains(t, r.args, "--entryPoints.websecure.address=:8443/tcp", "an unexposed port is still an entry point")
		}},
		{name: "the newer expose form", values: "ports: {websecure: {expose: {default: false}}, traefik: {expose: {default: true}}}\n",
			check: func(t *testing.T, r renderedWorkload) {
				assert.Equal(t, []string{"traefik 8080->traefik", "web 80->web"}, serviceRendered(t, r.service))
			}},
		{name: "an extra UDP port", values: "ports: {dns: {port: 5353, exposedPort: 53, expose: {default: true}, protocol: UDP}}\n",
			check: func(t *testing.T, r renderedWorkload) {
				assert.Contains(t, r.args, "--entryPoints.dns.address=:5353/udp")
				assert.Contains(t, r.container["ports"], map[string]any{"name": "dns", "containerPort": float64(5353), "protocol": "UDP"})
				ports, _, _ := unstructured.NestedSlice(r.service.Object, "spec", "ports")
				assert.Contains(t, ports, map[string]any{"name": "dns", "port": float64(53), "targetPort": "dns", "protocol": "UDP"})
			}},
		{name: "forwarded headers, PROXY protocol and TLS", values: `
ports:
  web:
    forwardedHeaders: {trustedIPs: [10.0.0.0/8, 192.168.0.0/16]}
    proxyProtocol: {insecure: true}
  websecure:
    tls: {enabled: true, certResolver: le}
    forwardedHeaders: {insecure: true}
`, check: func(t *testing.T, r renderedWorkload) {
			assert.Subset(t, r.args, []string{
				"--entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8,192.168.0.0/16",
				"--entryPoints.web.proxyProtocol.insecure",
				"--entryPoints.websecure.http.tls=true",
				"--entryPoints.websecure.http.tls.certResolver=le",
				"--entryPoints.websecure.forwardedHeaders.insecure",
			})
			assert.NotContains(t, r.args, "--entryPoints.web.forwardedHeaders.insecure")
		}},
		{name: "providers, logs and arguments", values: `
providers:
  kubernetesIngress: {enabled: false}
  kubernetesGateway: {enabled: true}
logs: {general: {level: debug}, access: {enabled: true}}
globalArguments: [--global.checknewversion=false]
additionalArguments: [--serversTransport.insecureSkipVerify=true]
`, check: func(t *testing.T, r renderedWorkload) {
			assert.Equal(t, "--global.checknewversion=false", r.args[0], "global arguments first")
			assert.Equal(t, "--serversTransport.insecureSkipVerify=true", r.args[len(r.args)-1], "additional arguments last")
			assert.Subset(t, r.args, []string{"--log.level=DEBUG", "--accesslog=true", "--providers.kubernetescrd", "--providers.kubernetesgateway"})
			assert.NotContains(t, r.args, "--providers.kubernetesingress")
			role := r.objs["ClusterRole/traefik-kube-system"]
			require.NotNil(t, role)
			rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
			assert.Contains(t, toString(rules), "gateway.networking.k8s.io", "the Gateway provider may read the Gateway API")
		}},
		{name: "image, scheduling and pod annotations", values: `
image: {registry: docker.io, repository: traefik, tag: v3.5.0, pullPolicy: Always}
tolerations: [{key: dedicated, operator: Exists}]
nodeSelector: {ingress: "true"}
priorityClassName: system-cluster-critical
podAnnotations: {a: top, both: top}
deployment: {podAnnotations: {b: deployment, both: deployment}}
`, check: func(t *testing.T, r renderedWorkload) {
			assert.Equal(t, "docker.io/traefik:v3.5.0", r.container["image"])
			assert.Equal(t, "Always", r.container["imagePullPolicy"])
			assert.Equal(t, []any{map[string]any{"key": "dedicated", "operator": "Exists"}}, r.pod["tolerations"])
			assert.Equal(t, map[string]any{"ingress": "true"}, r.pod["nodeSelector"])
			assert.Equal(t, "system-cluster-critical", r.pod["priorityClassName"])
			ann, _, _ := unstructured.NestedStringMap(r.workload.Object, "spec", "template", "metadata", "annotations")
			assert.Equal(t, map[string]string{"a": "top", "b": "deployment", "both": "deployment"}, ann)
		}},
		{name: "the system default registry without image.registry", values: "global: {systemDefaultRegistry: registry.example:5000}\nimage: {tag: \"\"}\n",
			check: func(t *testing.T, r renderedWorkload) {
				assert.Equal(t, "registry.example:5000/rancher/mirrored-library-traefik:3.6.12", r.container["image"], "the tag defaults to appVersion")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := renderTraefik(t, tt.values)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, readRendered(t, objs))
		})
	}
}

// TestEmbeddedTraefikDefaultsAreSupported keeps the supported keys and the chart's own
// values.yaml in step: every default is a supported key.
func TestEmbeddedTraefikDefaultsAreSupported(t *testing.T) {
	data, err := fs.ReadFile(chartsFS, "charts/traefik/values.yaml")
	require.NoError(t, err)
	var vals map[string]any
	require.NoError(t, yaml.Unmarshal(data, &vals))
	assert.Empty(t, helm.UnsupportedTraefikValues(vals))
}
