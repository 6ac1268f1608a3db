package netns

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestReplySourceAnswersFromTheAddressTheRequestWasSentTo(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.3")
	v6 := netip.MustParseAddr("fd00::3")
	tests := []struct {
		name string
		oob  []byte
		want []byte
	}{
		{
			name: "ipv4 packet info becomes the reply's spec_dst",
			oob:  unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 2, Spec_dst: [4]byte{10, 0, 0, 2}, Addr: v4.As4()}),
			want: unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: v4.As4()}),
		},
		{
			name: "ipv6 packet info becomes the reply's source without an interface",
			oob:  unix.PktInfo6(&unix.Inet6Pktinfo{Addr: v6.As16(), Ifindex: 2}),
			want: unix.PktInfo6(&unix.Inet6Pktinfo{Addr: v6.As16()}),
		},
		{name: "no control data leaves the source to the kernel", oob: nil, want: nil},
		{name: "truncated control data leaves the source to the kernel", oob: []byte{1, 2, 3}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := replySource(tt.oob)
			if tt.want == nil {
				require.Nil(t, got)
				return
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
