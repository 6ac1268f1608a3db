package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/servicelb/forwarder"
	"github.com/k3snet/k3snet/servicelb/forwarder/internal/lbnet"
)

// asMain makes the test binary run main's run instead of the tests, so the
// dataplane test runs the real command without building it separately.
const asMain = "KLIPPER_LB_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		os.Exit(run(context.Background(), os.LookupEnv, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestRunBadEnvironment(t *testing.T) {
	good := map[string]string{
		"SRC_PORT": "80", "SRC_RANGES": "0.0.0.0/0", "DEST_PROTO": "TCP", "DEST_PORT": "8080", "DEST_IPS": "10.43.0.10",
	}
	tests := []struct {
		name  string
		tweak map[string]string
		want  string
	}{{
		name:  "a bad port names the variable and its value",
		tweak: map[string]string{"SRC_PORT": "http"},
		want:  `klipper-lb: invalid environment: SRC_PORT="http": not a port number from 1 to 65535` + "\n",
	}, {
		name:  "several problems still make one line",
		tweak: map[string]string{"DEST_IPS": "", "DEST_PROTO": "ICMP"},
		want:  `klipper-lb: invalid environment: DEST_PROTO="ICMP": not TCP, UDP or SCTP; DEST_IPS: empty` + "\n",
	}, {
		name:  "a missing variable is named",
		tweak: map[string]string{"SRC_RANGES": "<unset>"},
		want:  "klipper-lb: invalid environment: SRC_RANGES: not set\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range good {
				env[k] = v
			}
			for k, v := range tt.tweak {
				if v == "<unset>" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			var stderr bytes.Buffer
			code := run(t.Context(), lookup, &stderr)
			assert.Equal(t, exitBadUsage, code)
			assert.Equal(t, tt.want, stderr.String())
		})
	}
}

// syncBuffer is a bytes.Buffer safe to read while a child process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// child is the command running in the LB namespace.
type child struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	// exited is closed when the process has exited; err is then Wait's result.
	exited chan struct{}
	err    error
}

// startChild runs this test binary as klipper-lb inside the LB netns with env.
func startChild(t *testing.T, n *lbnet.Net, env map[string]string) *child {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	// ip netns exec switches namespace and execs the binary in place, so the process
	// signalled below is the forwarder itself.
	cmd := exec.Command("ip", "netns", "exec", n.LB.Name(), exe)
	cmd.Env = append(os.Environ(), asMain+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	c := &child{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	require.NoError(t, cmd.Start())
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// stop sends SIGTERM and returns the exit status.
func (c *child) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	<-c.exited
	var exit *exec.ExitError
	if errors.As(c.err, &exit) {
		return exit.ExitCode()
	}
	require.NoError(t, c.err)
	return 0
}

// waitFor returns when ready reports true, or fails t when the child exits first.
func (c *child) waitFor(t *testing.T, what string, ready func() bool) {
	t.Helper()
	for !ready() {
		select {
		case <-c.exited:
			t.Fatalf("klipper-lb exited (%v) before %s; stderr:\n%s", c.err, what, c.stderr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestSIGTERMRemovesRules(t *testing.T) {
	n := lbnet.New(t)
	ctx := t.Context()
	n.Serve(t, 8080, n.Backend4, n.Backend6)
	probe := func(to netip.Addr) error {
		return n.Client.Probe(netns.TCP, netip.AddrPortFrom(to, 80), time.Second)
	}

	c := startChild(t, n, map[string]string{
		"SRC_PORT":   "80",
		"SRC_RANGES": n.ClientRange4.String() + "," + n.ClientRange6.String(),
		"DEST_PROTO": "TCP",
		"DEST_PORT":  "8080",
		// As the downward API renders status.hostIPs: both families, comma-separated.
		"DEST_IPS": n.Backend4.String() + "," + n.Backend6.String(),
	})
	c.waitFor(t, "forwarding IPv4 and IPv6", func() bool { return probe(n.LBForClient4) == nil && probe(n.LBForClient6) == nil })

	assert.Equal(t, exitOK, c.stop(t), "stderr:\n%s", c.stderr)
	assert.Contains(t, c.stderr.String(), "Removed forwarding rules")
	saved, err := n.Save(ctx, false)
	require.NoError(t, err)
	assert.Empty(t, lbnet.Grep(saved, forwarder.ChainPrefix), "iptables-save after SIGTERM")
	for _, to := range []netip.Addr{n.LBForClient4, n.LBForClient6} {
		err := probe(to)
		assert.True(t, netns.IsBlocked(err), "TCP %s after SIGTERM: want blocked, got %v", to, err)
	}
}

func TestNothingToForwardWaitsInsteadOfCrashLooping(t *testing.T) {
	n := lbnet.New(t)
	require.NoError(t, n.LB.SetSysctl("net.ipv6.conf.all.forwarding", "0"))

	// An IPv6-only Service on a pod whose IPv6 forwarding is off (#9949).
	c := startChild(t, n, map[string]string{
		"SRC_PORT": "80", "SRC_RANGES": "::/0", "DEST_PROTO": "UDP", "DEST_PORT": "8080",
		"DEST_IPS": n.Backend6.String(),
	})
	c.waitFor(t, "saying it waits", func() bool {
		return strings.Contains(c.stderr.String(), "Nothing to forward, waiting to be stopped")
	})
	assert.Contains(t, c.stderr.String(), "net.ipv6.conf.all.forwarding", "the log names the sysctl to set")
	assert.Equal(t, exitOK, c.stop(t), "stderr:\n%s", c.stderr)
}
