package netns_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
)

const (
	// allowed bounds probes that should succeed; they return as soon as the echo
	// arrives, so it only matters when something is broken.
	allowed = 3 * time.Second
	// blocked bounds probes that should fail; a DROP takes all of it.
	blocked = 300 * time.Millisecond
)

// vethPair is two namespaces joined by one veth, each end with an IPv4 and an
// IPv6 address.
type vethPair struct {
	client, server     *netns.Namespace
	clientV4, serverV4 netip.Addr
	clientV6, serverV6 netip.Addr
}

// newVethPair builds client(eth0) <-> server(eth0) on 10.0.0.0/24 and fd00::/64.
func newVethPair(t *testing.T) vethPair {
	t.Helper()
	ctx := t.Context()
	p := vethPair{
		client:   netns.NewT(t, "client"),
		server:   netns.NewT(t, "server"),
		clientV4: netip.MustParseAddr("10.0.0.1"),
		serverV4: netip.MustParseAddr("10.0.0.2"),
		clientV6: netip.MustParseAddr("fd00::1"),
		serverV6: netip.MustParseAddr("fd00::2"),
	}
	c, s, err := p.client.AddVeth(ctx, "eth0", p.server, "eth0")
	require.NoError(t, err)
	addAddrs(t, c, "10.0.0.1/24", "fd00::1/64")
	addAddrs(t, s, "10.0.0.2/24", "fd00::2/64")
	return p
}

// addAddrs assigns each prefix to l.
func addAddrs(t *testing.T, l netns.Link, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		require.NoError(t, l.AddAddr(t.Context(), netip.MustParsePrefix(p)))
	}
}

// serve starts an echo server on every address of ns and a kernel-chosen port,
// stopped when the test ends.
func serve(t *testing.T, ns *netns.Namespace, proto netns.Proto) *netns.EchoServer {
	t.Helper()
	srv, err := ns.Serve(t.Context(), proto, netip.AddrPort{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	return srv
}

// namespaceNames returns the names `ip netns list` prints.
func namespaceNames(t *testing.T) []string {
	t.Helper()
	out, err := runHost(t, "ip", "netns", "list")
	require.NoError(t, err)
	var names []string
	for line := range strings.Lines(out) {
		if fields := strings.Fields(line); len(fields) > 0 {
			names = append(names, fields[0])
		}
	}
	return names
}

// runHost runs a command on the host, for checks that must not go through the
// package under test.
func runHost(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	return string(out), err
}
