package main

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3snet/k3snet/internal/images"
	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/nodecluster"
)

// benchDuration is how long each path is loaded.
const benchDuration = 5 * time.Second

// BenchmarkRealNodeDataplane measures, on a server and two agents, a backend pod on agent-1
// reached three ways with a new connection per request: from a LAN client through agent-1's
// LoadBalancer address (hostPort, ServiceLB's forwarder, the ClusterIP through kube-proxy),
// from the server's node through the ClusterIP, and from the server's node to the pod directly
// (connections/s and latency percentiles of each, and the LoadBalancer's share of the direct
// rate); then the time from `kubectl apply` of a LoadBalancer Service to the first answer
// through every node, and from a NetworkPolicy change to its effect on a real connection.
// Run with -benchtime=1x.
func BenchmarkRealNodeDataplane(b *testing.B) {
	for b.Loop() {
		c := nodecluster.Start(b, nodecluster.Options{Agents: 2})
		c.Apply(b, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeName: agent-1
      containers: [{name: web, image: `+images.TestServerImage+`, imagePullPolicy: Never, args: [serve, --http-port, "8080"]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 8080}]
`)
		lan, _ := c.AddHost(b, "lan")
		agent1 := c.Agents[0]
		lb := "http://" + agent1.IP.String() + ":8080/hostname"
		nodecluster.Eventually(b, 3*time.Minute, "the LoadBalancer answers", func() bool {
			_, err := nodecluster.HTTPGet(lan, lb)
			return err == nil
		})
		podIP := c.Kubectl(b, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].status.podIP}")
		clusterIP := c.Kubectl(b, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")

		var rates = map[string]float64{}
		for _, path := range []struct {
			name string
			ns   *netns.Namespace
			url  string
		}{
			{"direct", c.Server.NS, "http://" + podIP + ":8080/hostname"},
			{"clusterip", c.Server.NS, "http://" + clusterIP + ":8080/hostname"},
			{"lb", lan, lb},
		} {
			r := load(path.ns, path.url, benchDuration, 4)
			rates[path.name] = r.rate
			b.ReportMetric(r.rate, path.name+"-conn/s")
			b.ReportMetric(float64(r.p50.Microseconds())/1000, path.name+"-p50-ms")
			b.ReportMetric(float64(r.p99.Microseconds())/1000, path.name+"-p99-ms")
			if r.errors > 0 {
				b.Logf("%s: %d requests failed", path.name, r.errors)
			}
		}
		b.ReportMetric(100*rates["lb"]/rates["direct"], "lb-%-of-direct")

		start := time.Now()
		c.Apply(b, `apiVersion: v1
kind: Service
metadata: {name: web2}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 9090, targetPort: 8080}]
`)
		for _, n := range c.Nodes() {
			nodecluster.Eventually(b, 2*time.Minute, "the new Service answers on "+n.Name, func() bool {
				_, err := nodecluster.HTTPGet(lan, "http://"+n.IP.String()+":9090/hostname")
				return err == nil
			})
		}
		b.ReportMetric(time.Since(start).Seconds(), "lb-apply-to-every-node-s")

		direct := "http://" + podIP + ":8080/hostname"
		start = time.Now()
		c.Apply(b, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}
`)
		nodecluster.Eventually(b, time.Minute, "the policy refuses the server node's connection", func() bool {
			return netns.IsBlocked(c.Server.NS.Probe(netns.TCP, addrPort(podIP, 8080), time.Second))
		})
		b.ReportMetric(time.Since(start).Seconds(), "policy-apply-to-effect-s")
		start = time.Now()
		c.Kubectl(b, "delete", "networkpolicy", "deny")
		nodecluster.Eventually(b, time.Minute, "removing the policy lets it in", func() bool {
			_, err := nodecluster.HTTPGet(c.Server.NS, direct)
			return err == nil
		})
		b.ReportMetric(time.Since(start).Seconds(), "policy-delete-to-effect-s")
	}
}

// loadResult is one path's measurement.
type loadResult struct {
	rate          float64
	p50, p90, p99 time.Duration
	errors        int
}

// load sends requests to url from ns with workers concurrent clients, a new connection each,
// for d, and returns the rate of answered requests and their latency percentiles.
func load(ns *netns.Namespace, url string, d time.Duration, workers int) loadResult {
	var mu sync.Mutex
	var latencies []time.Duration
	errors := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				start := time.Now()
				body, err := nodecluster.HTTPGet(ns, url)
				took := time.Since(start)
				mu.Lock()
				if err != nil || !strings.HasPrefix(body, "web-") {
					errors++
				} else {
					latencies = append(latencies, took)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	return loadResult{rate: float64(len(latencies)) / d.Seconds(), p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), errors: errors}
}

func addrPort(ip string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(ip), port)
}
