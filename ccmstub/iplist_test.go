package ccmstub

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseIPList(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    string // fmt.Sprint of the result
		wantErr []string
	}{
		{name: "no values give no IPs", want: "[]"},
		{name: "comma lists and repeated flags of both families keep their order",
			values: []string{"10.0.0.5,fd00::5", "10.0.0.6"}, want: "[10.0.0.5 fd00::5 10.0.0.6]"},
		{name: "IPv6 first stays first", values: []string{"fd00::5", "10.0.0.5"}, want: "[fd00::5 10.0.0.5]"},
		{name: "blanks are trimmed and empty items skipped", values: []string{" 10.0.0.5 , ,", ""}, want: "[10.0.0.5]"},
		{name: "repeats are dropped, also across flags and spellings",
			values: []string{"10.0.0.5,fd00::5", "10.0.0.5", "FD00:0::5", "::ffff:10.0.0.5"}, want: "[10.0.0.5 fd00::5]"},
		{name: "every invalid entry is reported", values: []string{"10.0.0.300,ok", "example.com,10.0.0.1"},
			wantErr: []string{`"10.0.0.300" is not an IP address`, `"ok" is not an IP address`, `"example.com" is not an IP address`}},
		{name: "a CIDR is not an IP", values: []string{"10.0.0.0/24"}, wantErr: []string{`"10.0.0.0/24" is not an IP address`}},
		{name: "a zoned IPv6 address is refused", values: []string{"fe80::1%eth0"}, wantErr: []string{"with an IPv6 zone"}},
		{name: "addresses no other host reaches the node at are refused, each named",
			values: []string{"0.0.0.0,10.0.0.5", "127.0.0.1,::1", "224.0.0.1,ff02::1", "::,169.254.1.1,fe80::1", "::ffff:127.0.0.1"},
			wantErr: []string{
				`"0.0.0.0" is the unspecified address: not usable as a node address`,
				`"127.0.0.1" is a loopback address`, `"::1" is a loopback address`,
				`"224.0.0.1" is a multicast address`, `"ff02::1" is a multicast address`,
				`"::" is the unspecified address`, `"169.254.1.1" is a link-local address`, `"fe80::1" is a link-local address`,
				`"::ffff:127.0.0.1" is a loopback address`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIPList(tt.values...)
			if len(tt.wantErr) > 0 {
				for _, want := range tt.wantErr {
					require.ErrorContains(t, err, want)
				}
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, fmt.Sprint(got))
		})
	}
}
