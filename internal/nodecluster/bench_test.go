package nodecluster

import (
	"testing"
	"time"

	"github.com/k3snet/k3snet/internal/images"
)

// BenchmarkClusterStart measures a real cluster of a server and two agents on this machine:
// from nothing to every node Ready (server with its control plane, agents joined through TLS
// bootstrap, the air-gap images imported on each), then a pod on every node Running. Run it
// with -benchtime=1x: each iteration is a whole cluster.
func BenchmarkClusterStart(b *testing.B) {
	for b.Loop() {
		start := time.Now()
		c := Start(b, Options{Agents: 2})
		b.ReportMetric(time.Since(start).Seconds(), "nodes-ready-s")
		c.Apply(b, `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      containers: [{name: s, image: `+images.TestServerImage+`, imagePullPolicy: Never}]
`)
		Eventually(b, 3*time.Minute, "the DaemonSet's pods run on every node", func() bool {
			out, err := c.TryKubectl("", "get", "daemonset", "everywhere", "-o", "jsonpath={.status.numberReady}")
			return err == nil && out == "3"
		})
		b.ReportMetric(time.Since(start).Seconds(), "pods-ready-s")
	}
}
