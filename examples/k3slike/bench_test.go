package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/internal/procstat"
)

// idleWindow is how long the server is left alone before its CPU use and RSS are read.
const idleWindow = 30 * time.Second

// BenchmarkServerStartAndIdle measures k3slike as a user meets it, every controller on
// (netpol included, so it runs in a network namespace of its own): the first start on a new
// data dir until the ready line and until Traefik's LoadBalancer Service has its address,
// a restart on the same data dir until the ready line, and then, idle, the CPU share and RSS
// of the k3slike process itself (the control-plane processes are its children and are not
// counted). Run it with -benchtime=1x: one iteration is a whole server life.
func BenchmarkServerStartAndIdle(b *testing.B) {
	netns.Require(b)
	for b.Loop() {
		node := netns.NewT(b, "k3sbench")
		c := newCluster(b, "bench", "192.0.2.95")
		c.netns = node.Name()

		start := time.Now()
		srv := c.start()
		b.ReportMetric(time.Since(start).Seconds(), "first-ready-s")
		c.eventually("Traefik's LoadBalancer Service gets the node IP", func() bool {
			return c.value("{.status.loadBalancer.ingress[0].ip}", "-n", "kube-system", "service", "traefik") == "192.0.2.95"
		})
		b.ReportMetric(time.Since(start).Seconds(), "all-deployed-s")
		srv.stop(b)

		start = time.Now()
		srv = c.start()
		b.ReportMetric(time.Since(start).Seconds(), "restart-ready-s")
		time.Sleep(5 * time.Second) // let the start-up resyncs finish
		pid := srv.cmd.Process.Pid
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		require.NoError(b, err)
		require.Equal(b, "k3slike", strings.TrimSpace(string(comm)), "ip netns exec runs the server in its own process")
		cpuBefore, err := procstat.CPUSeconds(pid)
		require.NoError(b, err)
		time.Sleep(idleWindow)
		cpuAfter, err := procstat.CPUSeconds(pid)
		require.NoError(b, err)
		mem, err := procstat.ReadMemory(pid)
		require.NoError(b, err)
		b.ReportMetric(100*(cpuAfter-cpuBefore)/idleWindow.Seconds(), "idle-cpu-%")
		b.ReportMetric(mem.RSS, "idle-rss-MB")
		// RSS split: the binary's mapped pages (shared with the page cache) and the rest.
		b.ReportMetric(mem.File, "idle-rss-file-MB")
		b.ReportMetric(mem.Anon, "idle-rss-anon-MB")
		srv.stop(b)
	}
}
