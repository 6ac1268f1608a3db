package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/nodecluster"
)

// dnsWorkload is a client pod on agent-2 and a web Service in another namespace.
const dnsWorkload = `apiVersion: v1
kind: Pod
metadata: {name: dns-client}
spec:
  nodeSelector: {kubernetes.io/hostname: agent-2}
  containers: [{name: c, image: ` + images.TestServerImage + `, imagePullPolicy: Never, args: [serve, --http-port, "8080"]}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: catalog, namespace: shop}
spec:
  selector: {matchLabels: {app: catalog}}
  template:
    metadata: {labels: {app: catalog}}
    spec:
      containers:
      - name: catalog
        image: ` + images.TestServerImage + `
        imagePullPolicy: Never
        args: [serve, --http-port, "8080"]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  selector: {app: catalog}
  ports: [{port: 80, targetPort: 8080}]
`

// corednsCustom is K3s's ConfigMap for DNS customisation: *.override keys are imported into
// the cluster's server block, *.server keys add server blocks.
const corednsCustom = `apiVersion: v1
kind: ConfigMap
metadata: {name: coredns-custom, namespace: kube-system}
data:
  api.override: |
    rewrite name exact api.k3snet.internal kubernetes.default.svc.cluster.local
  lab.server: |
    lab.k3snet.test:53 {
        hosts {
            192.0.2.53 printer.lab.k3snet.test
        }
    }
`

// TestRealNodeCoreDNS runs the packaged CoreDNS on real nodes and resolves names from a real
// pod through its resolv.conf, as applications do: the API server's Service, a Service of
// another namespace by its short name (and reaches it by that name), and every node by its
// name through NodeHosts; then a coredns-custom ConfigMap's override and server block take
// effect in the running CoreDNS pod, without a restart. A server restarted with --disable=coredns removes CoreDNS and names
// stop resolving; restarted without it, CoreDNS comes back with NodeHosts and the user's
// coredns-custom, which is the user's and survives.
func TestRealNodeCoreDNS(t *testing.T) {
	c := nodecluster.Start(t, nodecluster.Options{Agents: 2, ServerArgs: []string{"--disable=traefik"}})
	c.Apply(t, dnsWorkload)
	nodecluster.Eventually(t, 3*time.Minute, "the client pod and the catalog backend run", func() bool {
		out, err := c.TryKubectl("", "get", "pods", "-A", "-l", "app=catalog", "-o", "jsonpath={.items[*].status.phase}")
		if err != nil || out != "Running" {
			return false
		}
		out, err = c.TryKubectl("", "get", "pod", "dns-client", "-o", "jsonpath={.status.phase}")
		return err == nil && out == "Running"
	})
	apiIP := c.Kubectl(t, "get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
	catalogIP := c.Kubectl(t, "-n", "shop", "get", "service", "catalog", "-o", "jsonpath={.spec.clusterIP}")

	// What a pod resolves with the packaged CoreDNS, and to what.
	packagedNames := map[string]string{
		"kubernetes.default.svc.cluster.local": apiIP,
		"catalog.shop":                         catalogIP,
	}
	for _, n := range c.Nodes() {
		packagedNames[n.Name] = n.IP.String() // NodeHosts
	}
	// What coredns-custom adds: the override rewrites a name to the API server's Service, the
	// server block answers its own zone.
	customNames := map[string]string{
		"api.k3snet.internal":     apiIP,
		"printer.lab.k3snet.test": "192.0.2.53",
	}
	allNames := maps.Clone(packagedNames)
	maps.Copy(allNames, customNames)
	// seen is the last answer logged per name, so a long wait logs each change once.
	seen := map[string]string{}
	resolves := func(want map[string]string) func() bool {
		return func() bool {
			ok := true
			for name, ip := range want {
				got, err := podLookup(c, "dns-client", name)
				if err == nil && got == ip {
					continue
				}
				ok = false
				if seen[name] != got {
					seen[name] = got
					t.Logf("%s resolves to %q, want %s", name, got, ip)
				}
			}
			return ok
		}
	}
	// NodeHosts of the agents that joined after CoreDNS started reaches it through the
	// kubelet's ConfigMap volume sync and the hosts plugin's reload: allow for both.
	nodecluster.Eventually(t, 4*time.Minute, "the pod resolves Services and node names", resolves(packagedNames))
	body := c.Kubectl(t, "exec", "dns-client", "--", "/testserver", "get", "http://catalog.shop/hostname")
	assert.True(t, strings.HasPrefix(body, "catalog-"), "the Service answers by its DNS name: %q", body)
	t.Logf("NodeHosts:\n%s", c.Kubectl(t, "-n", "kube-system", "get", "configmap", "coredns", "-o", "jsonpath={.data.NodeHosts}"))

	// coredns-custom reaches the running CoreDNS the same way, then its reload plugin.
	corednsPods := func() string {
		out, _ := c.TryKubectl("", "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "jsonpath={.items[*].metadata.uid}")
		return out
	}
	before := corednsPods()
	c.Apply(t, corednsCustom)
	nodecluster.Eventually(t, 4*time.Minute, "the running CoreDNS serves the coredns-custom names", resolves(allNames))
	assert.Equal(t, before, corednsPods(), "the same CoreDNS pod, reloaded, not restarted")

	// --disable=coredns: the server removes CoreDNS, and pods resolve nothing.
	c.Server.Stop(t)
	c.Server.StartWith(t, "--disable=coredns")
	nodecluster.Eventually(t, 3*time.Minute, "CoreDNS's Deployment, Service and ConfigMap are removed", func() bool {
		out, err := c.TryKubectl("", "-n", "kube-system", "get", "deployment,service,configmap", "-l", "k8s-app=kube-dns", "-o", "name")
		if err != nil || out != "" {
			return false
		}
		_, err = c.TryKubectl("", "-n", "kube-system", "get", "configmap", "coredns")
		return err != nil && strings.Contains(err.Error(), "NotFound")
	})
	nodecluster.Eventually(t, 2*time.Minute, "the pod can no longer resolve the API server's Service", func() bool {
		_, err := podLookup(c, "dns-client", "kubernetes.default.svc.cluster.local")
		return err != nil
	})
	_, err := os.Stat(filepath.Join(c.Server.DataDir, "server", "manifests", "coredns.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the disabled manifest is removed from the manifests directory")
	_, err = c.TryKubectl("", "-n", "kube-system", "get", "configmap", "coredns-custom")
	require.NoError(t, err, "coredns-custom is the user's: disabling CoreDNS keeps it")

	// Restarted without --disable=coredns, CoreDNS is back, with NodeHosts and coredns-custom.
	c.Server.Stop(t)
	c.Server.StartWith(t)
	nodecluster.Eventually(t, 5*time.Minute, "CoreDNS is back and the pod resolves every name again", resolves(allNames))
}

// podLookup resolves name in a pod through the pod's resolv.conf and returns the addresses,
// one per line as testserver prints them.
func podLookup(c *nodecluster.Cluster, pod, name string) (string, error) {
	out, err := c.TryKubectl("", "exec", pod, "--", "/testserver", "lookup", name)
	return strings.TrimSpace(out), err
}
