package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
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
		cpuBefore, err := cpuSeconds(pid)
		require.NoError(b, err)
		time.Sleep(idleWindow)
		cpuAfter, err := cpuSeconds(pid)
		require.NoError(b, err)
		rss, err := rssMB(pid)
		require.NoError(b, err)
		b.ReportMetric(100*(cpuAfter-cpuBefore)/idleWindow.Seconds(), "idle-cpu-%")
		b.ReportMetric(rss, "idle-rss-MB")
		srv.stop(b)
	}
}

// cpuSeconds is the user plus system CPU time of pid, from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold spaces; the fields after it are fixed:
	// utime and stime are the 12th and 13th after the closing parenthesis.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat: %q", pid, raw)
	}
	var ticks float64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	const clockTicksPerSecond = 100 // USER_HZ on Linux
	return ticks / clockTicksPerSecond, nil
}

// rssMB is the resident set size of pid in MiB, from /proc/<pid>/status.
func rssMB(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
