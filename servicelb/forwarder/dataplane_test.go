package forwarder_test

import (
	"context"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/internal/netns"
	"github.com/k3snet/k3snet/servicelb/forwarder"
	"github.com/k3snet/k3snet/servicelb/forwarder/internal/lbnet"
)

// Probe timeouts: long for traffic that must pass, short for traffic that must not,
// where a DROP can only show as silence.
const (
	passTimeout  = 5 * time.Second
	blockTimeout = time.Second
)

// backendPort is where the backend's echo servers listen: DEST_PORT.
const backendPort = 8080

// dataplane is one test's network plus helpers that act in it.
type dataplane struct {
	*lbnet.Net
	ctx context.Context
}

// start makes a forwarder for cfg and applies it inside the LB namespace.
func (d dataplane) start(t *testing.T, cfg forwarder.Config) *forwarder.Forwarder {
	t.Helper()
	return d.startWith(t, cfg, forwarder.Options{})
}

// startWith is start with options.
func (d dataplane) startWith(t *testing.T, cfg forwarder.Config, opts forwarder.Options) *forwarder.Forwarder {
	t.Helper()
	f, err := forwarder.New(cfg, opts)
	require.NoError(t, err)
	require.NoError(t, d.LB.Do(func() error { return f.Apply(d.ctx) }))
	return f
}

// stop removes f's rules from inside the LB namespace, as SIGTERM makes Run do.
func (d dataplane) stop(t *testing.T, f *forwarder.Forwarder) {
	t.Helper()
	require.NoError(t, d.LB.Do(func() error { return f.Cleanup(d.ctx) }))
}

// config is a forwarder of proto on srcPort to the backend's echo port.
func (d dataplane) config(proto forwarder.Protocol, srcPort uint16, dests ...netip.Addr) forwarder.Config {
	return forwarder.Config{
		SrcPort:   srcPort,
		SrcRanges: []netip.Prefix{d.ClientRange4, d.ClientRange6},
		Proto:     proto,
		DestPort:  backendPort,
		DestIPs:   dests,
	}
}

// save returns the forwarder's lines of iptables-save and ip6tables-save in the LB netns.
func (d dataplane) save(t *testing.T, counters bool) []string {
	t.Helper()
	saved, err := d.Save(d.ctx, counters)
	require.NoError(t, err)
	return lbnet.Grep(saved, forwarder.ChainPrefix)
}

func reaches(t *testing.T, from *netns.Namespace, proto netns.Proto, to netip.Addr, port uint16) {
	t.Helper()
	assert.NoError(t, from.Probe(proto, netip.AddrPortFrom(to, port), passTimeout), "%s %s from %s", proto, to, from)
}

func blocked(t *testing.T, from *netns.Namespace, proto netns.Proto, to netip.Addr, port uint16) {
	t.Helper()
	err := from.Probe(proto, netip.AddrPortFrom(to, port), blockTimeout)
	assert.True(t, netns.IsBlocked(err), "%s %s from %s: want blocked, got %v", proto, to, from, err)
}

func TestDataplane(t *testing.T) {
	n := lbnet.New(t)
	_, ctx := ktesting.NewTestContext(t)
	d := dataplane{Net: n, ctx: ctx}
	d.Serve(t, backendPort, d.Backend4, d.Backend6)

	// A rule of someone else's in the pod's netns, which nothing may remove.
	foreign := []string{"-A", "FORWARD", "-p", "icmp", "-j", "ACCEPT"}
	_, err := d.LB.Exec(ctx, "iptables", foreign...)
	require.NoError(t, err)

	// The pod's two containers for a Service with TCP and UDP on port 80, in one netns.
	tcp := d.start(t, d.config(forwarder.TCP, 80, d.Backend4, d.Backend6))
	udp := d.start(t, d.config(forwarder.UDP, 80, d.Backend6, d.Backend4))

	t.Run("TCP and UDP from inside SRC_RANGES reach the backend over IPv4 and IPv6", func(t *testing.T) {
		for _, proto := range []netns.Proto{netns.TCP, netns.UDP} {
			reaches(t, d.Client, proto, d.LBForClient4, 80)
			reaches(t, d.Client, proto, d.LBForClient6, 80)
		}
	})

	t.Run("a client outside SRC_RANGES gets nothing, over IPv4 and IPv6", func(t *testing.T) {
		for _, proto := range []netns.Proto{netns.TCP, netns.UDP} {
			blocked(t, d.Outsider, proto, d.LBForOutsider4, 80)
			blocked(t, d.Outsider, proto, d.LBForOutsider6, 80)
		}
	})

	t.Run("a second start installs nothing twice and rewrites nothing", func(t *testing.T) {
		reaches(t, d.Client, netns.TCP, d.LBForClient4, 80)
		reaches(t, d.Client, netns.TCP, d.LBForClient6, 80)
		before := d.save(t, true)
		hits := regexp.MustCompile(`^\S+: \[[1-9][0-9]*:[0-9]+\] -A KLIPPER-LB-DNAT-TCP-80 `)
		var counted int
		for _, line := range before {
			if hits.MatchString(line) {
				counted++
			}
		}
		require.Equal(t, 2, counted, "both families' DNAT rules counted the probes:\n%v", before)

		d.start(t, d.config(forwarder.TCP, 80, d.Backend4, d.Backend6))
		// Equal counters mean no rule was deleted and added again.
		assert.Equal(t, before, d.save(t, true))
	})

	t.Run("two destinations of a family share connections round-robin", func(t *testing.T) {
		// Only Backend4 serves; a connection sent to Backend4b is refused by its kernel.
		rr := d.start(t, d.config(forwarder.TCP, 81, d.Backend4, d.Backend4b))
		var passed, refused int
		for range 4 {
			err := d.Client.Probe(netns.TCP, netip.AddrPortFrom(d.LBForClient4, 81), passTimeout)
			switch {
			case err == nil:
				passed++
			case netns.IsBlocked(err):
				refused++
			default:
				t.Fatalf("probe: %v", err)
			}
		}
		assert.Equal(t, 2, passed, "connections to %s", d.Backend4)
		assert.Equal(t, 2, refused, "connections to %s", d.Backend4b)
		d.stop(t, rr)
	})

	t.Run("stopping one container removes its rules and leaves the other's working", func(t *testing.T) {
		d.stop(t, tcp)
		blocked(t, d.Client, netns.TCP, d.LBForClient4, 80)
		blocked(t, d.Client, netns.TCP, d.LBForClient6, 80)
		reaches(t, d.Client, netns.UDP, d.LBForClient4, 80)
		reaches(t, d.Client, netns.UDP, d.LBForClient6, 80)
		saved := lbnet.Grep(strings.Join(d.save(t, false), "\n"), "-80")
		assert.Empty(t, lbnet.Grep(strings.Join(saved, "\n"), "TCP-80"), "no rule of the stopped forwarder is left")
		assert.Len(t, lbnet.Grep(strings.Join(saved, "\n"), "UDP-80"), 2*(3+3+4),
			"the UDP forwarder's 3 chains, 3 jumps and 4 rules stay in both families")
	})

	t.Run("stopping the last container leaves no rule of its own and every foreign rule", func(t *testing.T) {
		d.stop(t, tcp) // a no-op when the step before ran: Cleanup is idempotent
		d.stop(t, udp)
		blocked(t, d.Client, netns.UDP, d.LBForClient4, 80)
		blocked(t, d.Client, netns.UDP, d.LBForClient6, 80)
		assert.Empty(t, d.save(t, false))
		saved, err := d.Save(ctx, false)
		require.NoError(t, err)
		assert.Len(t, lbnet.Grep(saved, "-A FORWARD -p icmp -j ACCEPT"), 1, "the foreign rule survives:\n%s", saved)
	})

	t.Run("IPv6 forwarding off installs IPv4 only and does not fail", func(t *testing.T) {
		require.NoError(t, d.LB.SetSysctl("net.ipv6.conf.all.forwarding", "0"))
		t.Cleanup(func() { _ = d.LB.SetSysctl("net.ipv6.conf.all.forwarding", "1") })
		f := d.start(t, d.config(forwarder.TCP, 82, d.Backend4, d.Backend6))
		saved := lbnet.Grep(strings.Join(d.save(t, false), "\n"), "TCP-82")
		var v4, v6 int
		for _, line := range saved {
			switch {
			case strings.HasPrefix(line, "iptables-save: "):
				v4++
			case strings.HasPrefix(line, "ip6tables-save: "):
				v6++
			}
		}
		assert.Equal(t, 3+3+4, v4, "IPv4 has 3 chains, 3 jumps and 4 rules")
		assert.Zero(t, v6, "IPv6 has nothing")
		reaches(t, d.Client, netns.TCP, d.LBForClient4, 82)
		d.stop(t, f)
		assert.Empty(t, lbnet.Grep(strings.Join(d.save(t, false), "\n"), "TCP-82"))
	})

	t.Run("the legacy backend forwards too, and a second start rewrites nothing there either", func(t *testing.T) {
		if _, err := exec.LookPath("iptables-legacy"); err != nil {
			t.Skip("skipping: iptables-legacy not on PATH")
		}
		legacy := forwarder.Options{Backend: forwarder.BackendLegacy}
		cfg := d.config(forwarder.UDP, 84, d.Backend4, d.Backend6)
		f := d.startWith(t, cfg, legacy)
		reaches(t, d.Client, netns.UDP, d.LBForClient4, 84)
		reaches(t, d.Client, netns.UDP, d.LBForClient6, 84)
		blocked(t, d.Outsider, netns.UDP, d.LBForOutsider4, 84)

		saved := lbnet.Grep(strings.Join(d.save(t, true), "\n"), "UDP-84")
		require.Len(t, saved, 2*(3+3+4), "3 chains, 3 jumps and 4 rules per family")
		for _, line := range saved {
			assert.Contains(t, line, "-legacy-save: ", "only legacy tables hold the rules")
		}
		d.startWith(t, cfg, legacy)
		assert.Equal(t, saved, lbnet.Grep(strings.Join(d.save(t, true), "\n"), "UDP-84"))

		d.stop(t, f)
		assert.Empty(t, lbnet.Grep(strings.Join(d.save(t, false), "\n"), "UDP-84"))
		blocked(t, d.Client, netns.UDP, d.LBForClient4, 84)
	})
}
