package netns_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
)

func TestSCTPReportsUnsupportedOnKernelsWithoutIt(t *testing.T) {
	t.Parallel()
	supported, err := netns.SCTPSupported()
	require.NoError(t, err)
	if supported {
		t.Skip("kernel supports SCTP; TestSCTPIsEchoedAcrossAVethWhenTheKernelHasIt covers it")
	}
	ns := netns.NewT(t, "sctp")
	err = ns.Probe(netns.SCTP, netip.MustParseAddrPort("127.0.0.1:9"), blocked)
	require.ErrorIs(t, err, netns.ErrSCTPUnsupported)
	assert.False(t, netns.IsBlocked(err), "unsupported is not the same as blocked")

	_, err = ns.Serve(t.Context(), netns.SCTP, netip.AddrPort{})
	require.ErrorIs(t, err, netns.ErrSCTPUnsupported)
}

func TestSCTPIsEchoedAcrossAVethWhenTheKernelHasIt(t *testing.T) {
	t.Parallel()
	supported, err := netns.SCTPSupported()
	require.NoError(t, err)
	if !supported {
		t.Skip("kernel has no SCTP sockets (EPROTONOSUPPORT)")
	}
	p := newVethPair(t)
	srv := serve(t, p.server, netns.SCTP)
	for _, dst := range []netip.Addr{p.serverV4, p.serverV6} {
		require.NoError(t, p.client.Probe(netns.SCTP, netip.AddrPortFrom(dst, srv.Port()), allowed), "to %s", dst)
		err := p.client.Probe(netns.SCTP, netip.AddrPortFrom(dst, 9), allowed)
		assert.True(t, netns.IsBlocked(err), "no server on port 9: IsBlocked(%v)", err)
	}
}
