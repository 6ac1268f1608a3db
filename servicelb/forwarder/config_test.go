package forwarder

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []problem
	}{{
		name: "the base config is valid",
		cfg:  newConfig(),
	}, {
		name: "the zero config names every field's variable",
		cfg:  Config{},
		want: []problem{
			{Var: EnvSrcPort, Value: "0", Err: ErrBadPort}, {Var: EnvSrcRanges, Err: ErrEmpty},
			{Var: EnvDestProto, Err: ErrBadProtocol}, {Var: EnvDestPort, Value: "0", Err: ErrBadPort},
			{Var: EnvDestIPs, Err: ErrEmpty},
		},
	}, {
		name: "an invalid prefix and an invalid address are refused",
		cfg: newConfig(func(c *Config) {
			c.SrcRanges = []netip.Prefix{{}}
			c.DestIPs = []netip.Addr{{}}
		}),
		want: []problem{
			{Var: EnvSrcRanges, Value: "invalid Prefix", Err: ErrBadRange},
			{Var: EnvDestIPs, Value: "invalid IP", Err: ErrBadDestination},
		},
	}, {
		name: "a protocol Kubernetes does not have is refused",
		cfg:  newConfig(func(c *Config) { c.Proto = "DCCP" }),
		want: []problem{{Var: EnvDestProto, Value: "DCCP", Err: ErrBadProtocol}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, problems(t, tt.cfg.Validate()))
		})
	}
}

func TestNormalized(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want Config
	}{{
		name: "a normalized config stays as it is",
		cfg:  newConfig(),
		want: newConfig(),
	}, {
		name: "a Go caller's unmasked, unsorted, duplicated lists are cleaned like the environment's",
		cfg: newConfig(func(c *Config) {
			c.SrcRanges = prefixes("fd00:1::5/64", "10.1.2.3/16", "10.1.0.0/16")
			c.DestIPs = addrs("fd00:2::2", "10.2.0.10", "10.2.0.9", "10.2.0.10")
		}),
		want: newConfig(func(c *Config) {
			c.SrcRanges = prefixes("10.1.0.0/16", "fd00:1::/64")
			c.DestIPs = addrs("10.2.0.9", "10.2.0.10", "fd00:2::2")
		}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.cfg
			inRanges, inDests := slices.Clone(in.SrcRanges), slices.Clone(in.DestIPs)
			assert.Equal(t, tt.want, in.normalized())
			assert.Equal(t, inRanges, in.SrcRanges, "the caller's ranges are not changed")
			assert.Equal(t, inDests, in.DestIPs, "the caller's destinations are not changed")
		})
	}
}
