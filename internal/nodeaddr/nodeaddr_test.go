package nodeaddr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		addr    netip.Addr
		wantErr string
	}{
		{name: "a private IPv4 address is usable", addr: netip.MustParseAddr("10.0.0.1")},
		{name: "a public IPv6 address is usable", addr: netip.MustParseAddr("2001:db8::1")},
		{name: "a unique local IPv6 address is usable", addr: netip.MustParseAddr("fd00::1")},
		{name: "the zero Addr is refused", wantErr: "the zero address: not usable as a node address"},
		{name: "0.0.0.0 is refused", addr: netip.MustParseAddr("0.0.0.0"), wantErr: `"0.0.0.0" is the unspecified address`},
		{name: ":: is refused", addr: netip.MustParseAddr("::"), wantErr: `"::" is the unspecified address`},
		{name: "127.0.0.1 is refused", addr: netip.MustParseAddr("127.0.0.1"), wantErr: "a loopback address"},
		{name: "any 127/8 address is refused", addr: netip.MustParseAddr("127.1.2.3"), wantErr: "a loopback address"},
		{name: "::1 is refused", addr: netip.MustParseAddr("::1"), wantErr: "a loopback address"},
		{name: "a mapped loopback address is refused", addr: netip.MustParseAddr("::ffff:127.0.0.1"), wantErr: `"::ffff:127.0.0.1" is a loopback address`},
		{name: "IPv4 multicast is refused", addr: netip.MustParseAddr("224.0.0.1"), wantErr: "a multicast address"},
		{name: "IPv6 link-local multicast is refused", addr: netip.MustParseAddr("ff02::1"), wantErr: "a multicast address"},
		{name: "IPv6 global multicast is refused", addr: netip.MustParseAddr("ff0e::1"), wantErr: "a multicast address"},
		{name: "IPv4 link-local is refused", addr: netip.MustParseAddr("169.254.1.1"), wantErr: "a link-local address"},
		{name: "IPv6 link-local is refused", addr: netip.MustParseAddr("fe80::1"), wantErr: "a link-local address"},
		{name: "a zone is refused", addr: netip.MustParseAddr("fe80::1%eth0"), wantErr: "IPv6 zone"},
		{name: "the broadcast address is refused", addr: netip.MustParseAddr("255.255.255.255"), wantErr: "the broadcast address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.addr)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.wantErr)
			assert.ErrorIs(t, err, ErrUnusable)
		})
	}
}
