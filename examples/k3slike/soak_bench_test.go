package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/nodecluster"
	"github.com/k3snet/k3snet/internal/procstat"
)

// The soak's shape: one churn step every soakStepEvery; each kind of object lives for a window
// of steps, so the cluster holds a steady population while every object is new within minutes.
const (
	soakStepEvery    = 2 * time.Second
	soakSampleEvery  = 30 * time.Second
	soakDurationEnv  = "K3SNET_SOAK_DURATION"
	soakDefault      = 30 * time.Minute
	soakPodWindow    = 60 // pods alive at once; every third on the server's own node
	soakNodeWindow   = 10 // kwok worker nodes alive at once; one new every fourth step
	soakSvcWindow    = 20 // LoadBalancer Services alive at once; one new every third step
	soakPolicyWindow = 20 // NetworkPolicies alive at once
	soakApps         = 5  // distinct app labels the pods, Services and policies select
)

// soakStep is what step i of the churn applies (one YAML stream) and deletes (kind/name pairs):
// a pod every step (and an older pod relabelled), a NetworkPolicy every step, a worker node
// every fourth step, a LoadBalancer Service every third, each deleted when it leaves its window.
func soakStep(i int) (apply string, deletes []string) {
	var docs []string
	node := "soak"
	if i%3 != 0 {
		node = fmt.Sprintf("w-%d", (i/4)%soakNodeWindow)
	}
	docs = append(docs, soakPod(i, node, i%soakApps))
	if j := i - soakPodWindow/2; j >= 0 {
		// A pod halfway through its life changes app: policies and Services re-select.
		jNode := "soak"
		if j%3 != 0 {
			jNode = fmt.Sprintf("w-%d", (j/4)%soakNodeWindow)
		}
		docs = append(docs, soakPod(j, jNode, (j+1)%soakApps))
	}
	if j := i - soakPodWindow; j >= 0 {
		deletes = append(deletes, fmt.Sprintf("pod/p-%d", j))
	}
	docs = append(docs, fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np-%d, namespace: soak}
spec:
  podSelector: {matchLabels: {app: a%d}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: a%d}}}, {ipBlock: {cidr: 10.%d.0.0/16, except: [10.%d.1.0/24]}}]
    ports: [{port: %d}]`, i, i%soakApps, (i+2)%soakApps, i%200, i%200, 1000+i%100))
	if j := i - soakPolicyWindow; j >= 0 {
		deletes = append(deletes, fmt.Sprintf("networkpolicy/np-%d", j))
	}
	if i%4 == 0 {
		n := (i / 4) % soakNodeWindow
		if i/4 >= soakNodeWindow {
			// The node's slot comes round again: the old node goes, a new one of that name comes.
			deletes = append(deletes, fmt.Sprintf("node/w-%d", n))
		}
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Node
metadata:
  name: w-%d
  labels: {kubernetes.io/hostname: w-%d}
  annotations: {kwok.x-k8s.io/node: fake, k3s.io/internal-ip: 192.0.2.%d}`, n, n, 150+n))
	}
	if i%3 == 0 {
		s := i / 3
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: s-%d, namespace: soak}
spec:
  type: LoadBalancer
  selector: {app: a%d}
  ports: [{port: %d, targetPort: 8080}]`, s, s%soakApps, 20000+s%1000))
		if s >= soakSvcWindow {
			deletes = append(deletes, fmt.Sprintf("service/s-%d", s-soakSvcWindow))
		}
	}
	return strings.Join(docs, "\n---\n") + "\n", deletes
}

func soakPod(i int, node string, app int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: p-%d, namespace: soak, labels: {app: a%d}}
spec:
  nodeName: %s
  containers: [{name: c, image: registry.k8s.io/pause:3.10, ports: [{containerPort: 8080, name: http}]}]`, i, app, node)
}

// soakSample is one reading of the k3slike process.
type soakSample struct {
	at                     time.Duration
	rssMB, heapMB, cpuSecs float64
	goroutines             float64
}

// BenchmarkSoak runs k3slike (every controller on, netpol in a network namespace of its own)
// under a steady churn of Pods, Nodes, LoadBalancer Services and NetworkPolicies for
// $K3SNET_SOAK_DURATION (30m by default), sampling its RSS, Go heap, goroutines and CPU every
// 30 s. It reports the figures after the warm-up (the first sixth) and at the end: flat
// memory and goroutines mean nothing grows with the objects that came and went. Run it with
// -benchtime=1x; it is a measurement, not a timed test.
func BenchmarkSoak(b *testing.B) {
	netns.Require(b)
	duration := soakDefault
	if v := os.Getenv(soakDurationEnv); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(b, err, soakDurationEnv)
		duration = d
	}
	for b.Loop() {
		ns := netns.NewT(b, "k3ssoak")
		c := newCluster(b, "soak", "192.0.2.97")
		c.netns = ns.Name()
		metrics := "127.0.0.1:" + strconv.Itoa(freePort(b))
		pid := startQuiet(b, c, filepath.Join(b.TempDir(), "k3slike.log"), "--metrics-bind-address="+metrics, "--disable=traefik,coredns")
		c.kubectl("create", "namespace", "soak")

		var samples []soakSample
		start := time.Now()
		nextSample := start
		steps, failures := 0, 0
		for i := 0; time.Since(start) < duration; i++ {
			stepStart := time.Now()
			apply, deletes := soakStep(i)
			// Deletes first: a worker node's slot is deleted and made again in one step.
			if len(deletes) > 0 {
				args := append([]string{"delete", "-n", "soak", "--ignore-not-found", "--wait=false"}, deletes...)
				if _, err := c.try(args...); err != nil {
					failures++
					b.Logf("step %d delete: %v", i, err)
				}
			}
			if _, err := c.kubectlStdin(apply, "apply", "-f", "-"); err != nil {
				failures++
				b.Logf("step %d apply: %v", i, err)
			}
			steps++
			if time.Now().After(nextSample) {
				s, err := sampleProcess(ns, pid, metrics)
				require.NoError(b, err)
				s.at = time.Since(start)
				samples = append(samples, s)
				nextSample = nextSample.Add(soakSampleEvery)
			}
			time.Sleep(soakStepEvery - time.Since(stepStart))
		}
		require.GreaterOrEqual(b, len(samples), 2, "a soak of %s takes too few samples", duration)
		// A benchmark's log is cut after ten lines: one table, a row per sixth of the run.
		table := fmt.Sprintf("%d churn steps (%d failed kubectl calls) in %s\n%8s %8s %8s %10s %8s",
			steps, failures, duration, "t", "RSS MB", "heap MB", "goroutines", "CPU s")
		for i, s := range samples {
			if i%max(1, len(samples)/6) == 0 || i == len(samples)-1 {
				table += fmt.Sprintf("\n%8s %8.1f %8.1f %10.0f %8.1f", s.at.Round(time.Second), s.rssMB, s.heapMB, s.goroutines, s.cpuSecs)
			}
		}
		b.Log(table)
		warm, last := samples[len(samples)/6], samples[len(samples)-1]
		b.ReportMetric(warm.rssMB, "warm-rss-MB")
		b.ReportMetric(last.rssMB, "end-rss-MB")
		b.ReportMetric(warm.heapMB, "warm-heap-MB")
		b.ReportMetric(last.heapMB, "end-heap-MB")
		b.ReportMetric(warm.goroutines, "warm-goroutines")
		b.ReportMetric(last.goroutines, "end-goroutines")
		b.ReportMetric(100*(last.cpuSecs-warm.cpuSecs)/(last.at-warm.at).Seconds(), "cpu-%")
		b.ReportMetric(float64(steps)/duration.Seconds()*60, "steps/min")
	}
}

// startQuiet runs a k3slike server like cluster.start, its log to logPath instead of the
// benchmark's output (a soak writes too much for that), waits for its ready line and returns
// its pid.
func startQuiet(b *testing.B, c *cluster, logPath string, extra ...string) int {
	b.Helper()
	log, err := os.Create(logPath)
	require.NoError(b, err)
	cmd := c.command(c.exe, c.serverArgs(extra...)...)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(b, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = log.Close()
	})
	deadline := time.Now().Add(3 * time.Minute)
	for !logHas(logPath, "k3slike is ready") {
		select {
		case err := <-done:
			b.Fatalf("k3slike exited before it was ready: %v (log %s)", err, logPath)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("k3slike not ready after 3 minutes (log %s)", logPath)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return cmd.Process.Pid
}

func logHas(path, line string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), line)
}

// sampleProcess reads pid's RSS and CPU from /proc and its Go heap and goroutines from its
// /metrics (component-base's Go collector), inside ns where it listens.
func sampleProcess(ns *netns.Namespace, pid int, metricsAddr string) (soakSample, error) {
	var s soakSample
	mem, err := procstat.ReadMemory(pid)
	if err != nil {
		return s, err
	}
	s.rssMB = mem.RSS
	if s.cpuSecs, err = procstat.CPUSeconds(pid); err != nil {
		return s, err
	}
	body, err := nodecluster.HTTPGet(ns, "http://"+metricsAddr+"/metrics")
	if err != nil {
		return s, err
	}
	values := promValues(body, "go_goroutines", "go_memstats_heap_inuse_bytes")
	s.goroutines = values["go_goroutines"]
	s.heapMB = values["go_memstats_heap_inuse_bytes"] / (1 << 20)
	return s, nil
}

// promValues returns the values of the unlabelled samples named in a Prometheus text page.
func promValues(page string, names ...string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		for _, want := range names {
			if name == want {
				if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
					out[name] = v
				}
			}
		}
	}
	return out
}
