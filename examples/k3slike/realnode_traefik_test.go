package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/nodecluster"
)

// traefikBackend is a web app behind Traefik: an Ingress (no class: the default IngressClass,
// Traefik's, is set on it at creation) and an IngressRoute, each for a host of its own.
const traefikBackend = `apiVersion: apps/v1
kind: Deployment
metadata: {name: whoami}
spec:
  selector: {matchLabels: {app: whoami}}
  template:
    metadata: {labels: {app: whoami}}
    spec:
      containers:
      - name: whoami
        image: ` + images.TestServerImage + `
        imagePullPolicy: Never
        args: [serve, --http-port, "8080"]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: whoami}
spec:
  selector: {app: whoami}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: whoami}
spec:
  rules:
  - host: ingress.k3snet.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: whoami}
spec:
  entryPoints: [web]
  routes:
  - match: Host(` + "`route.k3snet.test`" + `)
    kind: Rule
    services: [{name: whoami, port: 80}]
`

// traefikConfig is a K3s user's HelmChartConfig for the packaged Traefik, dropped into the
// manifests directory: two replicas and one more entry point, exposed through the Service.
const traefikConfig = `apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata:
  name: traefik
  namespace: kube-system
spec:
  valuesContent: |-
    deployment:
      replicas: 2
    ports:
      alt:
        port: 9000
        expose: true
        exposedPort: 8081
        protocol: TCP
`

// TestRealNodeTraefik runs the packaged Traefik on real nodes behind ServiceLB, installed by
// K3s's helm-install job in a pod (the klipper-helm image), and sends
// HTTP from a machine on the LAN to the Traefik LoadBalancer address of every node: an Ingress
// and an IngressRoute (the traefik-crd chart's CRD) each reach the backend pod by their Host,
// an unknown Host gets Traefik's 404, and the Ingress's status carries the LoadBalancer's
// addresses (published service, as K3s configures Traefik). A HelmChartConfig dropped into
// the manifests directory upgrades the release: two Traefik pods, and a new entry point
// exposed through the Service that answers on every node. A server restarted with
// --disable=traefik uninstalls it, and the LoadBalancer address stops answering.
func TestRealNodeTraefik(t *testing.T) {
	c := nodecluster.Start(t, nodecluster.Options{Agents: 2})
	nodecluster.Eventually(t, 4*time.Minute, "the traefik-crd chart's IngressRoute CRD is served", func() bool {
		_, err := c.TryKubectl("", "get", "crd", "ingressroutes.traefik.io")
		return err == nil
	})
	nodecluster.Eventually(t, 4*time.Minute, "Traefik runs and its IngressClass is the default", func() bool {
		out, err := c.TryKubectl("", "-n", "kube-system", "get", "deployment", "traefik", "-o", "jsonpath={.status.readyReplicas}")
		if err != nil || out != "1" {
			return false
		}
		out, err = c.TryKubectl("", "get", "ingressclass", "traefik", "-o", `jsonpath={.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}`)
		return err == nil && out == "true"
	})
	nodecluster.Eventually(t, time.Minute, "Traefik was installed by K3s's helm-install-traefik job, which completed", func() bool {
		out, err := c.TryKubectl("", "-n", "kube-system", "get", "job", "helm-install-traefik", "-o", "jsonpath={.status.succeeded}")
		return err == nil && out == "1"
	})
	c.Apply(t, traefikBackend)
	assert.Equal(t, "traefik", c.Kubectl(t, "get", "ingress", "whoami", "-o", "jsonpath={.spec.ingressClassName}"),
		"an Ingress without a class gets the default one, Traefik's")
	var nodeIPs []string
	for _, n := range c.Nodes() {
		nodeIPs = append(nodeIPs, n.IP.String())
	}
	nodecluster.Eventually(t, 3*time.Minute, "the Traefik Service and the Ingress publish every node's address", func() bool {
		svc, err := c.TryKubectl("", "-n", "kube-system", "get", "service", "traefik", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		if err != nil || !sameFields(svc, nodeIPs) {
			return false
		}
		ing, err := c.TryKubectl("", "get", "ingress", "whoami", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		return err == nil && sameFields(ing, nodeIPs)
	})

	lan, _ := c.AddHost(t, "lant")
	for _, n := range c.Nodes() {
		for _, host := range []string{"ingress.k3snet.test", "route.k3snet.test"} {
			url := "http://" + n.IP.String() + "/hostname"
			nodecluster.Eventually(t, 2*time.Minute, "Traefik routes "+host+" to the backend through "+n.Name, func() bool {
				body, err := getWithHost(lan, url, host)
				return err == nil && strings.HasPrefix(body, "whoami-")
			})
		}
	}
	nodecluster.Eventually(t, time.Minute, "a Host no router matches gets Traefik's 404", func() bool {
		status, _, err := nodecluster.HTTPRequest(lan, "http://"+c.Server.IP.String()+"/hostname", "unknown.k3snet.test")
		return err == nil && status == http.StatusNotFound
	})

	// A HelmChartConfig in the manifests directory changes the running release.
	manifests := filepath.Join(c.Server.DataDir, "server", "manifests")
	require.NoError(t, os.WriteFile(filepath.Join(manifests, "traefik-config.yaml"), []byte(traefikConfig), 0o600))
	nodecluster.Eventually(t, 4*time.Minute, "the Traefik rollout ends with two ready pods and the Service exposes the new entry point", func() bool {
		out, err := c.TryKubectl("", "-n", "kube-system", "get", "deployment", "traefik", "-o",
			"jsonpath={.spec.replicas}/{.status.replicas}/{.status.updatedReplicas}/{.status.readyReplicas}")
		if err != nil || out != "2/2/2/2" {
			return false
		}
		// Rolled out: every pod is of the new template, none of the old is left.
		if _, err := c.TryKubectl("", "-n", "kube-system", "rollout", "status", "deployment/traefik", "--timeout=5s"); err != nil {
			return false
		}
		out, err = c.TryKubectl("", "-n", "kube-system", "get", "service", "traefik", "-o", "jsonpath={.spec.ports[*].port}")
		return err == nil && sameFields(out, []string{"80", "443", "8081"})
	})
	for _, n := range c.Nodes() {
		url := "http://" + n.IP.String() + ":8081/hostname"
		nodecluster.Eventually(t, 2*time.Minute, "the new entry point routes the Ingress through "+n.Name, func() bool {
			body, err := getWithHost(lan, url, "ingress.k3snet.test")
			return err == nil && strings.HasPrefix(body, "whoami-")
		})
	}
	t.Logf("kubectl -n kube-system get pods -o wide:\n%s", c.Kubectl(t, "-n", "kube-system", "get", "pods", "-o", "wide"))

	// --disable=traefik uninstalls the release; the LoadBalancer address stops answering.
	c.Server.Stop(t)
	c.Server.StartWith(t, "--disable=traefik")
	nodecluster.Eventually(t, 3*time.Minute, "Traefik's HelmCharts, Deployment, Service and ServiceLB DaemonSet are removed", func() bool {
		out, err := c.TryKubectl("", "-n", "kube-system", "get", "helmcharts.helm.cattle.io,deployments,services,daemonsets", "-o", "name")
		return err == nil && !strings.Contains(out, "traefik")
	})
	for _, n := range c.Nodes() {
		for _, port := range []string{"", ":8081"} {
			url := "http://" + n.IP.String() + port + "/hostname"
			nodecluster.Eventually(t, 2*time.Minute, "nothing answers at "+url, func() bool {
				_, _, err := nodecluster.HTTPRequest(lan, url, "ingress.k3snet.test")
				return err != nil
			})
		}
	}
	_, err := os.Stat(filepath.Join(manifests, "traefik.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the disabled manifest is removed from the manifests directory")
}

// sameFields reports whether the space-separated fields of out are want, in any order.
func sameFields(out string, want []string) bool {
	got := strings.Fields(out)
	slices.Sort(got)
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(got, w)
}

// getWithHost fetches url from inside ns with the given Host header, as a browser asking for
// that name at the LoadBalancer's address, and returns the body of a 200 answer.
func getWithHost(ns *netns.Namespace, url, host string) (string, error) {
	status, body, err := nodecluster.HTTPRequest(ns, url, host)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET %s (Host %s): status %d", url, host, status)
	}
	return body, err
}
